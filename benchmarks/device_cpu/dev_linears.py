"""There: times the carried linear stacks at 20 and 128 rows, 2 threads (as benchmarks/linear_kernels.time_rows)."""
import statistics, sys, time
from pathlib import Path
import numpy as np
import voxtral_native
core = voxtral_native.native(); core.set_num_threads(2)
weights = 2048 * 1280 + 3 * 1280 * 5120
for pte in sorted((Path(__file__).parent / "linears").glob("*.pte")):
    prog = core.Program.load(str(pte))
    for rows in (20, 128):
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((1, rows, w)).astype(np.float32) for w in (1280, 2048, 5120)]
        for _ in range(3): prog.execute("forward", xs)
        ts = []
        for _ in range(15):
            t = time.perf_counter(); prog.execute("forward", xs); ts.append(time.perf_counter() - t)
        s = statistics.median(ts)
        print(f"{pte.stem} rows {rows:3d}: ms/layer {1e3 * s:7.2f} GFLOP/s {2 * rows * weights / s / 1e9:6.1f}")
