"""Here (torch 2.13): ring_sdpa programs + inputs for dev_check.py."""
import sys
from pathlib import Path
import numpy as np, torch
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/python")); sys.path.insert(0, str(ROOT / "benchmarks"))
import voxtral_native  # noqa
from test_ops import RingAttention, export_program
import attention
out = Path(__file__).parent / "cases"
out.mkdir(exist_ok=True)
for (window, chunk, heads, kv, d, positions) in [(70, 5, 8, 2, 64, 150), (750, 128, 4, 4, 64, 1024), (100, 1, 32, 8, 128, 130), (45, 40, 2, 2, 24, 120)]:
    name = f"c{window}_{chunk}_{d}"
    export_program(RingAttention(window + chunk - 1, kv, d, window), chunk, heads, kv, d, out / f"{name}.pte")
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, positions, h, d) for h in (heads, kv, kv))
    np.savez(out / f"{name}_in.npz", q=q.numpy(), k=k.numpy(), v=v.numpy(), chunk=chunk)
for case, (queries, heads, kv, d, window) in attention.CASES.items():
    attention.build(queries, heads, kv, d, window, out / f"bench_{case}.pte")
