"""libvoxtral's ring attention kernel (voxtral::ring_sdpa) at the shapes the runners call it with.

    python benchmarks/attention.py [--cases encoder,encoder-stream,decoder-verify,decoder-step]
        [--threads 2] [--repeats 20]

One layer's attention in a one-op ExecuTorch program run through libvoxtral's Program (the
runners' code path), random queries and a random, fully written ring cache passed as inputs,
the queries at a position where every query sees its whole window. Reports the median ms
per layer-call and the arithmetic rate: 4 x rows x visible keys x head dim flops (q.k and
weights.v), against the machine's float32 bound, measured as NumPy's BLAS matmul rate
(`sgemm_gflops`). The call's time includes handing the caches to the program (a copy of
2 x cache bytes), printed as `cache_mb`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import print_results, sgemm_gflops

# name: (queries per call, query heads, KV heads, head dim, window)
CASES = {
    "encoder": (128, 32, 32, 64, 750),  # an offline encode call: 32 audio tokens = 128 frames
    "encoder-stream": (20, 32, 32, 64, 750),  # a stream at 400 ms: 5 tokens = 20 frames
    "decoder-verify": (8, 32, 8, 128, 8192),  # a speculative verify call over 8 positions
    "decoder-step": (1, 32, 8, 128, 8192),  # one decoder step
}


def build(queries: int, heads: int, kv_heads: int, d: int, window: int, out: Path) -> None:
    import torch
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    from voxtral_native.export import ops

    class Attention(torch.nn.Module):
        def forward(self, q, k_cache, v_cache, start_pos):
            return ops.ring_sdpa(q, k_cache, v_cache, start_pos, window)

    slots = window + queries - 1
    example = (
        torch.randn(1, queries, heads, d),
        torch.randn(1, kv_heads, slots, d),
        torch.randn(1, kv_heads, slots, d),
        torch.tensor([0]),
    )
    with torch.no_grad():
        exported = torch.export.export(Attention(), example)
    program = to_edge_transform_and_lower(exported).to_executorch(ExecutorchBackendConfig())
    out.write_bytes(program.buffer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    import voxtral_native

    native = voxtral_native.native()
    native.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results: dict[str, float] = {"sgemm_gflops (the float32 bound)": sgemm_gflops()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            queries, heads, kv_heads, d, window = CASES[name]
            pte = Path(tmp) / f"{name}.pte"
            build(queries, heads, kv_heads, d, window, pte)
            program = native.Program.load(str(pte))
            slots = window + queries - 1
            q = rng.standard_normal((1, queries, heads, d), dtype=np.float32)
            k = rng.standard_normal((1, kv_heads, slots, d), dtype=np.float32)
            v = rng.standard_normal((1, kv_heads, slots, d), dtype=np.float32)
            start = np.array([10 * window], dtype=np.int64)  # every query sees a full window
            inputs = [q, k, v, start]
            for _ in range(3):
                program.execute("forward", inputs)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                program.execute("forward", inputs)
                times.append(time.perf_counter() - t)
            ms = statistics.median(times) * 1e3
            flops = 4 * queries * heads * window * d
            results[f"{name} ms/layer"] = ms
            results[f"{name} GFLOP/s"] = flops / ms / 1e6
            results[f"{name} cache_mb"] = 2 * k.nbytes / 1e6
    print_results(results)


if __name__ == "__main__":
    main()
