"""Where a GPU artifact's method time goes: torch.profiler (Kineto) around libvoxtral's
Program calls (the AOTI shim dispatches through ATen, so its ops and kernels show).

    python benchmarks/gpu_profile.py MODEL_DIR METHOD [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from common import load_methods, warm_up


def inputs_for(model_dir: Path, method: str, rng) -> list:
    md = json.loads((model_dir / "manifest.json").read_text())["metadata"]
    if method == "encode":
        return [rng.standard_normal((1, md["num_mel_bins"], md["mel_frames_per_token"])).astype(np.float32), np.array([5])]
    if method == "decode" and "num_mel_bins" in md:
        e = (0.02 * rng.standard_normal((1, 1, md["dim"]))).astype(np.float32)
        return [e, np.array([[1500]]), np.array([60]), np.array([6.0], dtype=np.float32)]
    if method == "decode":
        return [rng.integers(2, 20, (1, md["n_codebooks"]), dtype=np.int64), np.array([200])]
    if method == "acoustic_step":
        return [rng.standard_normal((1, md["dim"])).astype(np.float32),
                rng.standard_normal((1, md["n_codebooks"] - 1)).astype(np.float32), np.array([3])]
    raise SystemExit(f"no inputs for {method}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir", type=Path)
    p.add_argument("methods", nargs="+")
    p.add_argument("--calls", type=int, default=20)
    a = p.parse_args()
    run = load_methods(a.model_dir)
    rng = np.random.default_rng(0)
    for method in a.methods:
        x = inputs_for(a.model_dir, method, rng)
        warm_up(lambda: run(method, x))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(a.calls):
                run(method, x)
        print(f"===== {method}: {a.calls} calls", flush=True)
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=18, max_name_column_width=60))
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
