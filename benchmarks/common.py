"""What the benchmarks share: memory readings, the machine's copy bandwidth (the bound beside
every figure) and the results table."""

from __future__ import annotations

import os
import resource
import statistics
import time

import numpy as np


def rss_mb() -> float:
    for line in open(f"/proc/{os.getpid()}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_bandwidth_gbs(mb: int = 1024, runs: int = 5) -> float:
    """Median bytes moved per second by a large memcpy (read + write counted)."""
    src = np.ones(mb * 1024 * 1024 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t)
    return 2 * src.nbytes / statistics.median(times) / 1e9


def sgemm_gflops(n: int = 1536, runs: int = 7) -> float:
    """Median float32 rate of NumPy's BLAS (OpenBLAS, all cores) on an n x n matmul: the
    machine's practical FMA bound, measured rather than assumed (a 2-vCPU VM may share one
    physical core's FMA units: 90 GFLOP/s seen where 2 x 2 x 256-bit FMA x 3 GHz gives 190)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def warm_up(call, seconds: float = 1.0, min_calls: int = 5) -> None:
    """Calls `call()` until `seconds` have passed and it ran `min_calls` times: what runs
    once per process or per shape (XNNPACK packing weights, AOTInductor's first calls, the
    GPU's kernel loads and allocator growth) stays out of the timed calls. Seen on a tiny
    aoti-cpu package: the first four calls took 60 ms each, the rest 0.13 ms."""
    start, n = time.perf_counter(), 0
    while n < min_calls or time.perf_counter() - start < seconds:
        call()
        n += 1


def print_results(results: dict) -> None:
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


# --- backends: one way to time methods on every backend, and the bound's bandwidth ----------


def program_path(model_dir) -> str:
    """The artifact's program (model.pte for ExecuTorch, model.pt2 for AOTInductor)."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
    return str(Path(model_dir) / manifest["files"]["program"])


def on_gpu(manifest: dict) -> bool:
    return manifest["backend"] in ("cuda", "metal")


def load_methods(model_dir):
    """run(method, [numpy arrays]) -> [numpy arrays] through libvoxtral's Program: the code
    path the runners use, on whichever backend the artifact was exported for (outputs come
    back on the host, so a call's time includes its device synchronization)."""
    import voxtral_native

    program = voxtral_native.native().Program.load(program_path(model_dir))

    def run(method, inputs):
        return program.execute(method, inputs)

    run.methods = set(program.method_names())  # which optional methods this export has
    return run


def gpu_copy_bandwidth_gbs(mb: int = 4096, runs: int = 20) -> float:
    """Median device-to-device copy rate (read + write counted), timed with CUDA events."""
    import torch

    src = torch.ones(mb * 1024 * 1024 // 4, device="cuda")
    dst = torch.empty_like(src)
    times = []
    for _ in range(runs + 3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * src.numel() * 4 / statistics.median(times[3:]) / 1e9


def bandwidth_gbs(manifest: dict) -> float:
    return gpu_copy_bandwidth_gbs() if on_gpu(manifest) else copy_bandwidth_gbs()


def gpu_used_mb() -> float:
    """Memory in use on the GPU (the whole device, as nvidia-smi counts it)."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return (total - free) / 1e6


def bytes_per_weight(scheme: str | None, dtype: str = "fp32") -> float:
    """Bytes read per weight for a quantization scheme ('8da4w:32', '4w:128', '8da8w:0', None:
    the compute dtype): the integer values plus the per-group scales (XNNPACK: one bf16
    scale; PyTorch's int4 kernels on the GPU backend: a bf16 scale and a bf16 zero)."""
    if scheme is None:
        return {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}[dtype]
    name, _, group = scheme.partition(":")
    bits = 4 if name.endswith("4w") else 8
    group = int(group or 0)
    per_group = 4 if name == "4w" else 2
    return bits / 8 + (per_group / group if group else 0.0)
