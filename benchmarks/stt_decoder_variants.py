"""Which decoder program shape is fastest per step? Full-width Voxtral decoder layers
(random weights: speed does not depend on them), exported several ways, timed per call
through ExecuTorch's Python runtime with libvoxtral's kernels.

    python benchmarks/stt_decoder_variants.py [--layers 2] [--steps 40] [--rows 1] [--variants ...]

Variants: SCHEME/SHAPE[/DTYPE]: quantization scheme x (dynamic: T in 1..64 like the
`decode` method, called with --rows positions; or static T = 1) x compute dtype (fp32
default, bf16, fp16). Prints the median ms per call per layer and the weight bytes per
layer, so the effective weight bandwidth can be compared with the machine's copy bandwidth.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


class Layers(nn.Module):
    def __init__(self, n_layers: int, max_tokens: int):
        super().__init__()
        from voxtral_native.export.config import SttConfig
        from voxtral_native.export.models.stt import DecoderLayer
        from voxtral_native.make_checkpoint.specs import stt_params

        config = SttConfig.from_params(stt_params("full"))
        self.dim = config.decoder.dim
        self.head_dim, self.theta = config.decoder.head_dim, config.decoder.rope_theta
        self.layers = nn.ModuleList(DecoderLayer(config, max_tokens) for _ in range(n_layers))

    def forward(self, x, start_pos, t_cond):
        from voxtral_native.export.models.layers import rope_cos_sin

        cos, sin = rope_cos_sin(start_pos + torch.arange(x.shape[1]), self.head_dim, self.theta)
        for layer in self.layers:
            x = layer(x, start_pos, cos, sin, t_cond)
        return x


def parse_variant(variant: str) -> tuple[str, str, torch.dtype]:
    """'8da4w:32/static/fp16' -> ('8da4w:32', 'static', torch.float16)."""
    from voxtral_native.export.export_stt import DTYPES

    scheme, shape, *rest = variant.split("/")
    return scheme, shape, DTYPES[rest[0] if rest else "fp32"]


def build(variant: str, n_layers: int, path: Path) -> int:
    from voxtral_native.export.export_stt import lower
    from voxtral_native.export.quantize import QuantScheme, quantize_module_

    scheme, shape, dtype = parse_variant(variant)
    torch.manual_seed(0)
    model = Layers(n_layers, max_tokens=64).eval().requires_grad_(False).to(dtype)
    for layer in model.layers:
        nn.init.normal_(layer.ada_rms_norm_t_cond[2].weight, std=0.01)
        quantize_module_(layer, QuantScheme.parse(scheme), nn.Linear)
    x = torch.zeros(1, 2 if shape == "dynamic" else 1, model.dim, dtype=dtype)
    dynamic = {"x": {1: torch.export.Dim("t", min=1, max=64)}, "start_pos": None, "t_cond": None}
    with torch.no_grad():
        exported = torch.export.export(
            model, (x, torch.zeros(1, dtype=torch.long), torch.zeros(1, model.dim, dtype=dtype)),
            dynamic_shapes=dynamic if shape == "dynamic" else None,
        )  # fmt: skip
    return lower({"forward": exported}, {"n_layers": n_layers}, "xnnpack", path)


def time_steps(path: Path, dim: int, steps: int, dtype: torch.dtype, rows: int) -> list[float]:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")
    x, t_cond = torch.randn(1, rows, dim, dtype=dtype), torch.randn(1, dim, dtype=dtype)
    times = []
    for pos in range(steps + 5):
        t = time.perf_counter()
        method.execute([x, torch.tensor([pos * rows]), t_cond])
        if pos >= 5:  # warm-up: first calls pack weights and fault pages in
            times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=1,
                        help="positions per call for dynamic variants (1: a decoder step; 32: a prefill)")
    parser.add_argument(
        "--variants", nargs="+", metavar="SCHEME/SHAPE[/DTYPE]",
        default=["8da4w:32/dynamic", "8da4w:32/static", "8da4w:128/static", "4w:32/static", "4w:128/static"],
    )  # fmt: skip
    args = parser.parse_args()

    import voxtral_native

    native = voxtral_native.native()  # registers voxtral:: kernels
    if args.threads:
        native.set_num_threads(args.threads)
    print(f"{args.layers} full-width decoder layers, {args.steps} steps, threads {native.num_threads()}, "
          f"{args.rows} rows per call for dynamic variants (ms/step are per call)")
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            path = Path(tmp) / (variant.replace("/", "_").replace(":", "g") + ".pte")
            t = time.perf_counter()
            size = build(variant, args.layers, path)
            export_s = time.perf_counter() - t
            _, shape, dtype = parse_variant(variant)
            times = time_steps(path, 3072, args.steps, dtype, args.rows if shape == "dynamic" else 1)
            ms = 1e3 * statistics.median(times) / args.layers
            mb = size / 1e6 / args.layers
            print(f"{variant:<18} {ms:7.2f} ms/step/layer  (p90 {1e3 * sorted(times)[int(0.9 * len(times))] / args.layers:6.2f})"
                  f"  {mb:6.1f} MB/layer  {mb / ms:5.2f} GB/s  export {export_s:5.0f} s", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
