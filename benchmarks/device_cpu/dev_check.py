"""Runs the carried ring_sdpa programs through libvoxtral: outputs to argv[1], then times the bench programs."""
import statistics, sys, time
from pathlib import Path
import numpy as np
import voxtral_native
core = voxtral_native.native()
core.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
cases, out = Path(__file__).parent / "cases", Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for inp in sorted(cases.glob("c*_in.npz")):
    name = inp.name[:-7]
    a = np.load(inp); chunk = int(a["chunk"])
    prog = core.Program.load(str(cases / f"{name}.pte"))
    outs = []
    for s in range(0, a["q"].shape[1], chunk):
        res = prog.execute("forward", [np.ascontiguousarray(a[x][:, s:s + chunk]) for x in "qkv"] + [np.array([s], dtype=np.int64)])
        outs.append(np.asarray(res[0]))
    np.save(out / f"{name}_out.npy", np.concatenate(outs, axis=1)); print(name, "done")
rng = np.random.default_rng(0)
sys.path.insert(0, str(Path(__file__).parent))
CASES = {"encoder": (128, 32, 32, 64, 750), "encoder-stream": (20, 32, 32, 64, 750), "decoder-verify": (8, 32, 8, 128, 8192), "decoder-step": (1, 32, 8, 128, 8192)}
for name, (queries, heads, kv, d, window) in CASES.items():
    prog = core.Program.load(str(cases / f"bench_{name}.pte"))
    slots = window + queries - 1
    ins = [rng.standard_normal(s, dtype=np.float32) for s in ((1, queries, heads, d), (1, kv, slots, d), (1, kv, slots, d))] + [np.array([10 * window], dtype=np.int64)]
    for _ in range(3): prog.execute("forward", ins)
    ts = []
    for _ in range(20):
        t = time.perf_counter(); prog.execute("forward", ins); ts.append(time.perf_counter() - t)
    ms = statistics.median(ts) * 1e3
    print(f"{name} ms/layer {ms:.3f} GFLOP/s {4 * queries * heads * window * d / ms / 1e6:.1f}")
