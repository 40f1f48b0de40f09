"""The text-to-speech acoustic step (one Euler step of the flow, CFG batch of 2) at full size:
the last acoustic layer computed for the 3 tokens (before 2026-12-07) against token 0 alone
(what the velocity reads; the export's model now does this).

    python benchmarks/acoustic_step.py [--quant 8da8w] [--threads 2] [--repeats 35] [--rounds 3]

Voxtral-4B-TTS-2603's acoustic transformer (3 layers, 3072 wide, SwiGLU 9216) with random
weights, quantized by the export's recipe for `--quant` (the linears of the layers and the
projections and heads), traced as the program's `acoustic_step` and lowered by the export's
own `lower()`, each variant into its own program, run through libvoxtral's Program. Reports
the median ms per step of each (a frame takes 7), their ratio, the largest difference of
their outputs, the weight bytes a step reads, and the multiply-adds each does (rows x
weights: 6 rows, 3 tokens x CFG 2, through every linear; 2 rows through the last layer's
query, output and feed-forward linears when pruned).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import copy_bandwidth_gbs, print_results


def build(quant: str | None, pruned: bool, out: Path) -> tuple[int, float]:
    """Exports one acoustic_step program to `out`; returns (its size in bytes, the step's
    multiply-adds in G)."""
    import torch
    from torch import nn

    from voxtral_native.export.export_stt import lower
    from voxtral_native.export.models.tts import AcousticTransformer, quantize_acoustic
    from voxtral_native.export.quantize import QuantScheme, quantize_module_
    from voxtral_native.export.tts_config import TtsConfig
    from voxtral_native.make_checkpoint.specs import tts_params

    config = TtsConfig.from_params(tts_params("full"))

    class Unpruned(AcousticTransformer):
        def _velocity(self, x_t, time, llm):  # every layer over all 3 tokens (the code before)
            tokens = torch.stack([self.input_projection(x_t.to(llm.dtype)), time, llm], dim=1)
            for layer in self.layers:
                tokens = layer(tokens)
            return self.acoustic_codebook_output(self.norm(tokens)[:, 0])

    torch.manual_seed(0)
    at = (AcousticTransformer if pruned else Unpruned)(config).eval()
    del at.semantic_codebook_output  # its own method's; not in the step
    for lin in at.modules():
        if isinstance(lin, nn.Linear):
            nn.init.normal_(lin.weight, std=0.02)
    if quant:
        quantize_module_(at, QuantScheme.parse(quant), nn.Linear)

    class Step(nn.Module):  # export_tts's _AcousticStep over the acoustic transformer alone
        def __init__(self):
            super().__init__()
            self.at = at

        def forward(self, hidden, x, step):
            x_next = self.at.euler_step(hidden, x, step)
            return x_next, quantize_acoustic(x_next.float(), self.at.levels)

    cfg = config.acoustic
    layer = {n: p.numel() for n, p in at.layers[0].named_parameters() if p.dim() == 2}
    per_layer = sum(layer.values())
    qo_ffn = per_layer - layer["attention.wk.weight"] - layer["attention.wv.weight"]
    heads = sum(p.numel() for n, p in at.named_parameters() if p.dim() == 2 and not n.startswith("layers."))
    rows = 6  # 3 tokens x (conditioned, unconditioned)
    macs = cfg.n_layers * per_layer * rows - (qo_ffn * (rows - 2) if pruned else 0) + heads * 2  # heads: ~2 rows
    example = (torch.zeros(1, config.lm.dim), torch.zeros(1, config.n_acoustic_codebooks), torch.tensor([0]))
    with torch.no_grad():
        ep = torch.export.export(Step(), example)
    return lower({"forward": ep}, {}, "xnnpack", out), macs / 1e9


def time_steps(path: Path, repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds of one step over the 7 steps of a frame, and the last x it gave."""
    import voxtral_native

    program = voxtral_native.native().Program.load(str(path))
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((1, 3072)).astype(np.float32)
    noise = rng.standard_normal((1, 36)).astype(np.float32)

    def frame() -> tuple[list[float], np.ndarray]:
        x, times = noise, []
        for i in range(7):
            t = time.perf_counter()
            x = np.asarray(program.execute("forward", [hidden, x, np.array([i], dtype=np.int64)])[0])
            times.append(time.perf_counter() - t)
        return times, x

    frame()  # XNNPACK packs the weights at the first call
    times, x = [], None
    for _ in range(max(1, repeats // 7)):
        t, x = frame()
        times += t
    return statistics.median(times), x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quant", default="8da8w", help="the export's --acoustic-quant; 'none' for float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=35, help="steps timed per variant (whole frames of 7)")
    parser.add_argument("--rounds", type=int, default=3, help="the variants timed in turn this many times")
    args = parser.parse_args()

    import voxtral_native

    voxtral_native.native().set_num_threads(args.threads)
    quant = None if args.quant == "none" else args.quant
    results = {"quant": args.quant, "threads": voxtral_native.native().num_threads(),
               "copy_bandwidth_gbs": copy_bandwidth_gbs()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        built = {}
        for pruned in (False, True):
            path = Path(tmp) / f"step_{'pruned' if pruned else 'full'}.pte"
            size, macs = build(quant, pruned, path)
            built[pruned] = (path, size, macs)
        medians: dict[bool, list[float]] = {False: [], True: []}
        outputs = {}
        for _ in range(args.rounds):  # in turn, so that the shared machine's drift hits both
            for pruned, (path, _, _) in built.items():
                s, outputs[pruned] = time_steps(path, args.repeats)
                medians[pruned].append(s)
        for pruned, (path, size, macs) in built.items():
            name = "last layer token 0 only" if pruned else "last layer all 3 tokens"
            s = statistics.median(medians[pruned])
            results[f"{name}: ms/step (per round)"] = " ".join(f"{1e3 * m:.2f}" for m in medians[pruned])
            results[f"{name}: ms/step, MB/step, GB/s, G multiply-adds, GOP/s"] = (
                f"{1e3 * s:8.2f} {size / 1e6:7.1f} {size / 1e9 / s:6.1f} {macs:6.2f} {2 * macs / s:7.1f}")
        results["speed-up (all 3 tokens / token 0 only)"] = round(
            statistics.median(medians[False]) / statistics.median(medians[True]), 3)
        results["max |x difference| after 7 steps"] = float(np.abs(outputs[True] - outputs[False]).max())
        results["max |x|"] = float(np.abs(outputs[False]).max())
    print_results(results)


if __name__ == "__main__":
    main()
