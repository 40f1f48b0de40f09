"""Text-to-speech speed and memory on an exported model (run it on a full-size export).

    python benchmarks/tts.py MODEL_DIR [--frames 50] [--runs 3] [--threads 2] [--steps 20]

Random weights never say END_AUDIO, so every run synthesizes a fixed number of frames
(`max_frames`, 80 ms each). Reports (medians; the machine is shared, so compare ratios on CPU):
  - end to end through Synthesizer sessions: real-time factor (compute seconds / audio
    seconds) and time to first audio (request to first chunk: prefill, the first chunk's
    frames and its codec call), after one warm-up session; the warm-up's own first audio
    is reported too (it includes XNNPACK packing the weights on first use). Requests of the
    voice before them find its prompt prefix in the LM cache (text_prefill: only the text is
    prefilled); "_new_voice" figures alternate two other voices, so each prefills whole;
  - ms per frame split into LM step ('decode'), the acoustic steps (n_decoding_steps calls of
    'acoustic_step') and the codec ('codec' per call over max_codec_frames, divided by the
    chunk_frames each steady call yields), timed per method through libvoxtral's Program
    (the runners' code path, on the artifact's backend; the greedy semantic code comes with
    the LM step), plus prefill;
  - resident memory after load and peak; the memory each session plans and what a second
    concurrent session adds (the weights and XNNPACK's packed copies are shared);
  - the memory-bandwidth bound per frame: the weight bytes a frame must read (the LM's layers
    and semantic head once, the acoustic transformer n_decoding_steps times), counted from
    the source checkpoint's tensor shapes and the export's quantization, over this machine's
    measured copy bandwidth (on a GPU artifact: the GPU's device-to-device copy rate, and the
    GPU memory in use).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
from common import (
    bandwidth_gbs,
    bytes_per_weight,
    gpu_used_mb,
    load_methods,
    on_gpu,
    peak_rss_mb,
    print_results,
    rss_mb,
    warm_up,
)

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs back home again."


def weights_read_per_frame(manifest: dict) -> dict:
    """Parameter counts per part from the source checkpoint's shapes, and the bytes one frame reads."""
    from safetensors import safe_open

    ckpt = Path(manifest["source_checkpoint"]) / "consolidated.safetensors"
    counts = {"lm": 0, "semantic_head": 0, "acoustic": 0}
    with safe_open(str(ckpt), "np") as f:
        for key in f.keys():
            n = math.prod(f.get_slice(key).get_shape())
            if key.startswith("layers."):
                counts["lm"] += n
            elif key.startswith("acoustic_transformer.semantic_codebook_output"):
                counts["semantic_head"] += n
            elif key.startswith("acoustic_transformer.") and "acoustic_codebook_output" not in key:
                counts["acoustic"] += n
    q, dtype = manifest["quantization"], manifest["options"]["dtype"]
    steps = manifest["metadata"]["n_decoding_steps"]
    lm = counts["lm"] * bytes_per_weight(q["lm"], dtype)
    acoustic_step = counts["acoustic"] * bytes_per_weight(q["acoustic"], dtype)
    head = counts["semantic_head"] * bytes_per_weight(q["acoustic"], dtype)
    return {
        "lm_params_M": counts["lm"] / 1e6,
        "acoustic_params_M": counts["acoustic"] / 1e6,
        "lm_step_weight_mb": (lm + head) / 1e6,
        "acoustic_step_weight_mb": acoustic_step / 1e6,
        "frame_weight_mb": (lm + head + steps * acoustic_step) / 1e6,
    }


def method_timings(model_dir: Path, steps: int) -> dict:
    md = json.loads((model_dir / "manifest.json").read_text())["metadata"]
    if md.get("lm_input_is_bf16"):
        return {"methods": "skipped: bf16 program edges (time a float-edged export)"}
    run = load_methods(model_dir)
    dim, n_codes = md["dim"], md["n_codebooks"]

    def timed(method, inputs, repeats: int) -> list[float]:
        warm_up(lambda: run(method, inputs), min_calls=2)  # XNNPACK packs weights; AOTI / GPU first calls
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run(method, inputs)
            times.append(time.perf_counter() - t)
        return times

    # random inputs, never zeros (a GPU kernel can run faster on zeros than on real data)
    rng = np.random.default_rng(0)
    prompt = 160  # a voice (~150 rows) and a short sentence
    ids = rng.integers(1000, 2000, (1, prompt), dtype=np.int64)
    rows = (0.02 * rng.standard_normal((1, prompt - 20, dim))).astype(np.float32)
    prefill_s = timed("prefill", [ids, rows], 2)
    text_tokens = 20  # [NEXT_AUDIO_TEXT], a short sentence, the 3 tokens after it
    text_prefill_s = []
    if "text_prefill" in run.methods:
        text_prefill_s = timed("text_prefill", [ids[:, -text_tokens:], np.array([prompt - text_tokens])], 3)
    # decode at positions after the prompt (the KV cache in use grows by one per frame)
    codes = rng.integers(2, 20, (1, n_codes), dtype=np.int64)  # every codebook has > 20 codes
    warm_up(lambda: run("decode", [codes, np.array([prompt])]))
    decode_s = []
    for pos in range(prompt + 1, prompt + 1 + steps):
        t = time.perf_counter()
        run("decode", [codes, np.array([pos])])
        decode_s.append(time.perf_counter() - t)
    hidden = rng.standard_normal((1, dim)).astype(np.float32)
    x = rng.standard_normal((1, n_codes - 1)).astype(np.float32)
    acoustic_s = timed("acoustic_step", [hidden, x, np.array([3])], steps)
    codec_in = rng.integers(2, 20, (1, md["max_codec_frames"], n_codes), dtype=np.int64)
    codec_s = timed("codec", [codec_in], max(3, steps // 5))
    first_chunk_codec_s = []
    if "first_chunk_codec" in run.methods:
        first_chunk_codec_s = timed("first_chunk_codec", [codec_in[:, : md["first_chunk_frames"]].copy()], max(3, steps // 5))
    lm_ms = 1e3 * statistics.median(decode_s)
    acoustic_ms = 1e3 * statistics.median(acoustic_s) * md["n_decoding_steps"]
    codec_ms = 1e3 * statistics.median(codec_s) / md["chunk_frames"]
    return {
        f"prefill_ms_{prompt}_tokens": 1e3 * statistics.median(prefill_s),
        f"text_prefill_ms_{text_tokens}_tokens": 1e3 * statistics.median(text_prefill_s) if text_prefill_s else None,
        "first_chunk_codec_ms_per_call": 1e3 * statistics.median(first_chunk_codec_s) if first_chunk_codec_s else None,
        "lm_step_ms_per_frame": lm_ms,
        "acoustic_ms_per_frame": acoustic_ms,
        "acoustic_ms_per_step": acoustic_ms / md["n_decoding_steps"],
        "codec_ms_per_call": 1e3 * statistics.median(codec_s),
        "codec_ms_per_frame": codec_ms,
        "method_sum_ms_per_frame": lm_ms + acoustic_ms + codec_ms,
    }


def timed_session(synth, frames: int, voice: str | None = None) -> tuple[float, float, int]:
    """(seconds to the first chunk, seconds in all, samples) of one request."""
    t0 = time.perf_counter()
    session = synth.session(TEXT, voice=voice, max_frames=frames)
    first, samples = None, 0
    for chunk in session:
        if first is None:
            first = time.perf_counter() - t0
        samples += chunk.size
    return first, time.perf_counter() - t0, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--frames", type=int, default=50, help="frames per request (80 ms each; default 50)")
    parser.add_argument("--runs", type=int, default=3, help="timed requests after the warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20, help="method-level repetitions (default 20)")
    parser.add_argument("--no-methods", action="store_true", help="skip the per-method split")
    args = parser.parse_args()

    import voxtral_native
    from voxtral_native import Synthesizer

    start_rss = rss_mb()
    t = time.perf_counter()
    synth = Synthesizer(args.model_dir, threads=args.threads)
    load_s = time.perf_counter() - t
    loaded_rss = rss_mb()
    md = synth.metadata
    # The warm-up is a whole request: XNNPACK packs each method's weights at its first call, and
    # a request of first_chunk_frames never calls 'codec' (the steady chunks' method), so the
    # first timed request paid for packing it (benchmarks/results/tts_full_zen3.md).
    cold_first, cold_total, _ = timed_session(synth, args.frames)
    runs = [timed_session(synth, args.frames) for _ in range(args.runs)]  # the default voice, as the warm-up
    others = [v for v in synth.voices if v != synth.default_voice][:2]
    new_voice_runs = [timed_session(synth, args.frames, voice=others[i % 2]) for i in range(args.runs)]
    audio_s = runs[0][2] / synth.sample_rate
    assert runs[0][2] == args.frames * synth.samples_per_frame

    # A second session alongside a first one that has started: what a concurrent stream adds.
    first = synth.session(TEXT, max_frames=args.frames)
    next(iter(first))
    before = rss_mb()
    second = synth.session(TEXT, max_frames=args.frames)
    next(iter(second))
    second_mb = rss_mb() - before
    del first, second

    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    gpu = on_gpu(manifest)
    results = {
        "model_dir": str(args.model_dir),
        "program_mb": manifest["program_bytes"] / 1e6,
        "quantization": manifest["quantization"],
        "threads": voxtral_native.native().num_threads(),
        "frames_per_request": args.frames,
        "audio_seconds_per_request": audio_s,
        "load_s": load_s,
        "cold_first_audio_s_(includes_weight_packing)": cold_first,
        "first_audio_s": statistics.median(r[0] for r in runs),
        "rtf": statistics.median(r[1] for r in runs) / audio_s,
        "ms_per_frame_end_to_end": 1e3 * statistics.median(r[1] for r in runs) / args.frames,
        "first_audio_s_new_voice": statistics.median(r[0] for r in new_voice_runs),
        "rtf_new_voice": statistics.median(r[1] for r in new_voice_runs) / audio_s,
        "rss_before_load_mb": start_rss,
        "rss_after_load_mb": loaded_rss,
        "session_planned_mb": synth.session_memory_bytes / 1e6,
        "second_session_rss_mb": second_mb,
        "peak_rss_mb_(runner)": peak_rss_mb(),
    }
    if gpu:
        results["gpu_used_mb_(weights, two sessions' state, allocator cache)"] = gpu_used_mb()
    del synth
    if not args.no_methods:
        results.update(method_timings(args.model_dir, args.steps))
    bandwidth = bandwidth_gbs(manifest)
    weights = weights_read_per_frame(manifest)
    results.update(weights)
    results.update({
        ("gpu_copy_bandwidth_gbs" if gpu else "copy_bandwidth_gbs"): bandwidth,
        "frame_bound_ms_(weights/bandwidth)": weights["frame_weight_mb"] * 1e6 / (bandwidth * 1e9) * 1e3,
        "rtf_bound_(weights/bandwidth)": weights["frame_weight_mb"] * 1e6 / (bandwidth * 1e9) / 0.08,
    })  # fmt: skip
    print_results(results)


if __name__ == "__main__":
    main()
