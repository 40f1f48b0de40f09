"""XNNPACK's quantized linears at the row counts the runners call them with: which scheme and
group size to export each part with.

    python benchmarks/linear_kernels.py [--part encoder|decoder] [--schemes 8da4w:32,8da4w:0,8da8w:0]
        [--rows 1,4,20,128] [--layers 2] [--threads 2] [--repeats 15]

A stack of `--layers` layers, each the linears of one full-width layer of the part
(encoder: 1280 wide, attention 32 x 64, SwiGLU 5120; decoder: 3072 wide, 32 / 8 heads x 128,
SwiGLU 9216), random weights, quantized by the export's own recipe and lowered by its own
`lower()` into one ExecuTorch method with a dynamic row count, run through libvoxtral's
Program. Rows: an encoder call over n audio tokens has 4n rows; a decode call over k
positions has k. Reports, per scheme and row count, the median ms per layer, the weight
bytes per layer, the rate those bytes are read at (GB/s: against the machine's copy
bandwidth) and the arithmetic rate (GFLOP/s, 2 x rows x weights per call).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import copy_bandwidth_gbs, print_results

PARTS = {  # (in, out) of each linear in one layer
    "encoder": [(1280, 2048)] * 3 + [(2048, 1280), (1280, 5120), (1280, 5120), (5120, 1280)],
    "decoder": [(3072, 4096), (3072, 1024), (3072, 1024), (4096, 3072), (3072, 9216), (3072, 9216), (9216, 3072)],
}


def build(part: str, layers: int, scheme: str, out: Path) -> int:
    """Exports the stack for `scheme` to `out`; returns the program's size in bytes."""
    import torch
    from torch import nn

    from voxtral_native.export.export_stt import lower
    from voxtral_native.export.quantize import QuantScheme, quantize_module_

    widths = sorted({i for i, _ in PARTS[part]})

    class Stack(nn.Module):  # one input per input width, every linear's output returned
        def __init__(self):
            super().__init__()
            self.linears = nn.ModuleList(nn.Linear(i, o, bias=False) for _ in range(layers) for i, o in PARTS[part])

        def forward(self, x0, x1, x2):  # xj: [1, rows, widths[j]] (three input widths per part)
            by_width = dict(zip(widths, (x0, x1, x2)))
            return tuple(lin(by_width[lin.in_features]) for lin in self.linears)

    torch.manual_seed(0)
    model = Stack().eval()
    for lin in model.linears:
        nn.init.normal_(lin.weight, std=0.02)
    quantize_module_(model, QuantScheme.parse(scheme), nn.Linear)
    rows = torch.export.Dim("rows", min=1, max=256)
    example = tuple(torch.randn(1, 8, w) for w in widths)
    with torch.no_grad():
        ep = torch.export.export(model, example, dynamic_shapes=tuple({1: rows} for _ in widths))
    return lower({"forward": ep}, {}, "xnnpack", out)


def time_rows(path: Path, part: str, rows: int, repeats: int) -> float:
    import voxtral_native

    program = voxtral_native.native().Program.load(str(path))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, rows, w)).astype(np.float32) for w in sorted({i for i, _ in PARTS[part]})]
    for _ in range(3):
        program.execute("forward", xs)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        program.execute("forward", xs)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="encoder")
    parser.add_argument("--schemes", default="8da4w:32,8da4w:128,8da4w:0,8da8w:0")
    parser.add_argument("--rows", default="1,4,8,20,64,128")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    import voxtral_native

    voxtral_native.native().set_num_threads(args.threads)
    weights = sum(i * o for i, o in PARTS[args.part])  # per layer
    results = {"part": args.part, "layers": args.layers, "weights_per_layer_M": weights / 1e6,
               "threads": voxtral_native.native().num_threads(), "copy_bandwidth_gbs": copy_bandwidth_gbs()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in args.schemes.split(","):
            path = Path(tmp) / f"{scheme.replace(':', '_')}.pte"
            size = build(args.part, args.layers, scheme, path)
            layer_mb = size / args.layers / 1e6
            for rows in [int(r) for r in args.rows.split(",")]:
                s = time_rows(path, args.part, rows, args.repeats) / args.layers
                results[f"{scheme} rows {rows:>3}: ms/layer, MB/layer, GB/s, GFLOP/s"] = (
                    f"{1e3 * s:8.2f} {layer_mb:7.1f} {layer_mb / 1e3 / s:6.1f} {2 * rows * weights / s / 1e9:7.1f}")
            path.unlink()
    print_results(results)


if __name__ == "__main__":
    main()
