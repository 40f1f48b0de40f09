"""Speech-to-text speed and memory on an exported model (run it on a full-size export).

    python benchmarks/stt.py MODEL_DIR [--seconds 20] [--threads 2] [--steps 50]

Reports (medians over repeated runs; the machine is shared, so compare ratios on CPU):
  - decoder ms per step (one 80 ms token) and encoder ms per 80 ms chunk, per method
    (ExecuTorch's Python runtime on the same program, libvoxtral's kernels loaded);
  - real-time factor streaming (100 ms chunks through Transcriber.session) and offline
    (Transcriber.transcribe): compute seconds / audio seconds;
  - latency from a chunk's arrival to its text: the compute time of feed() for that chunk
    (p50 / p95), plus the algorithmic delay (transcription delay + 2.5 ms mel look-ahead);
  - resident memory after load and peak; the memory each session plans (mostly its KV
    caches, paged in as a stream advances) and what a second session adds after 2 s of
    audio (the weights, and XNNPACK's packed copies, are shared);
  - the memory-bandwidth bound of a decoder step: bytes the step must read (program weights
    of the decoder + the KV cache in use) over this machine's measured copy bandwidth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from common import copy_bandwidth_gbs, peak_rss_mb, print_results, rss_mb


def speech(seconds: float, rate: int) -> np.ndarray:
    """Synthetic speech-like audio (a voiced harmonic stack with syllable-rate bursts)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    rng = np.random.default_rng(0)
    return (0.1 * voiced * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def method_timings(model_dir: Path, steps: int) -> dict:
    import torch
    from executorch.runtime import Runtime

    import voxtral_native

    voxtral_native.native()  # registers voxtral:: kernels
    manifest = json.loads((model_dir / "manifest.json").read_text())
    md = manifest["metadata"]
    program = Runtime.get().load_program(str(model_dir / "model.pte"))
    encode, decode = program.load_method("encode"), program.load_method("decode")
    mel = torch.zeros(1, md["num_mel_bins"], md["mel_frames_per_token"])
    enc_times = []
    for i in range(steps):
        t = time.perf_counter()
        encode.execute([mel, torch.tensor([i])])
        enc_times.append(time.perf_counter() - t)
    n = md["max_encoder_tokens"]
    batch_mel = torch.zeros(1, md["num_mel_bins"], md["mel_frames_per_token"] * n)
    batch_times = []
    for i in range(max(3, steps // 10)):
        t = time.perf_counter()
        encode.execute([batch_mel, torch.tensor([steps + i * n])])
        batch_times.append((time.perf_counter() - t) / n)
    embeds = torch.zeros(1, 39, md["dim"])
    ids = torch.ones(1, 39, dtype=torch.long)
    t = time.perf_counter()
    decode.execute([embeds, ids, torch.tensor([0]), torch.tensor([6.0])])
    prefill = time.perf_counter() - t
    dec_times = []
    for pos in range(39, 39 + steps):
        t = time.perf_counter()
        decode.execute([embeds[:, :1], ids[:, :1], torch.tensor([pos]), torch.tensor([6.0])])
        dec_times.append(time.perf_counter() - t)
    return {
        "encoder_ms_per_chunk_streaming": 1e3 * statistics.median(enc_times),
        f"encoder_ms_per_chunk_batched_{n}": 1e3 * statistics.median(batch_times),
        "decoder_prefill_ms_39_positions": 1e3 * prefill,
        "decoder_ms_per_step": 1e3 * statistics.median(dec_times),
        "decoder_ms_per_step_p95": 1e3 * float(np.percentile(dec_times, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0, help="audio length (default 20)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=50, help="method-level repetitions (default 50)")
    args = parser.parse_args()

    import voxtral_native
    from voxtral_native.transcriber import Transcriber

    start_rss = rss_mb()
    transcriber = Transcriber(args.model_dir, threads=args.threads)
    session = transcriber.session()  # maps the program, plans its memory
    loaded_rss = rss_mb()
    rate = transcriber.sample_rate
    audio = speech(args.seconds, rate)

    # Streaming: 100 ms chunks as a live source delivers them (fed as fast as possible).
    chunk = rate // 10
    latencies = []
    t0 = time.perf_counter()
    for i in range(0, len(audio), chunk):
        t = time.perf_counter()
        session.feed(audio[i : i + chunk])
        session.drain()
        latencies.append(time.perf_counter() - t)
    session.flush()
    streaming = time.perf_counter() - t0
    before_second = rss_mb()
    second = transcriber.session()
    second.feed(audio[: 2 * rate])
    second.drain()
    second_session_mb = rss_mb() - before_second
    del second
    t0 = time.perf_counter()
    transcriber.transcribe(audio, sample_rate=rate)
    offline = time.perf_counter() - t0

    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    md = manifest["metadata"]
    results = {
        "model_dir": str(args.model_dir),
        "program_mb": manifest["program_bytes"] / 1e6,
        "quantization": manifest["quantization"],
        "threads": voxtral_native.native().num_threads(),
        "audio_seconds": args.seconds,
        "rtf_streaming": streaming / args.seconds,
        "rtf_offline": offline / args.seconds,
        "chunk_to_text_ms_p50": 1e3 * statistics.median(latencies),
        "chunk_to_text_ms_p95": 1e3 * float(np.percentile(latencies, 95)),
        "algorithmic_delay_ms": transcriber.delay_ms + 2.5,
        "rss_before_load_mb": start_rss,
        "rss_after_load_mb": loaded_rss,
        "session_planned_mb": transcriber.session_memory_bytes / 1e6,
        "second_session_rss_mb_after_2s": second_session_mb,
    }
    results.update(method_timings(args.model_dir, args.steps))
    bandwidth = copy_bandwidth_gbs()
    # Bytes one decoder step reads: the decoder's share of the program (its layers dominate:
    # 26 of 58 transformer layers but 3x wider) is bounded above by the whole program; plus
    # the KV cache in use at this position (fp32 K and V, 8 heads x 128, 26 layers).
    kv_bytes_per_pos = 2 * 26 * 8 * 128 * 4 if md["dim"] == 3072 else 0
    positions = 39 + args.steps
    step_bytes = manifest["program_bytes"] + kv_bytes_per_pos * positions
    results.update({
        "copy_bandwidth_gbs": bandwidth,
        "decoder_step_bound_ms_(program+kv)/bandwidth": 1e3 * step_bytes / (bandwidth * 1e9),
        "peak_rss_mb": peak_rss_mb(),
    })  # fmt: skip
    print_results(results)


if __name__ == "__main__":
    main()
