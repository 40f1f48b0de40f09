"""Speech-to-text speed and memory on an exported model (run it on a full-size export).

    python benchmarks/stt.py MODEL_DIR [--seconds 20] [--threads 2] [--steps 50]

Reports (medians over repeated runs; the machine is shared, so compare ratios on CPU):
  - decoder ms per step (one 80 ms token) and encoder ms per 80 ms chunk, per method
    (libvoxtral's Program on the artifact's backend: the runners' code path);
  - real-time factor streaming (100 ms chunks through Transcriber.session) and offline
    (Transcriber.transcribe): compute seconds / audio seconds;
  - latency from a chunk's arrival to its text: the compute time of feed() for that chunk
    (p50 / p95), plus the algorithmic delay (transcription delay + 2.5 ms mel look-ahead);
  - resident memory after load and peak; the memory each session plans (mostly its KV
    caches, paged in as a stream advances) and what a second session adds after 2 s of
    audio (the weights, and XNNPACK's packed copies, are shared);
  - the memory-bandwidth bound of a decoder step: bytes the step must read (program weights
    of the decoder + the KV cache in use) over this machine's measured copy bandwidth (a GPU
    artifact: the GPU's device-to-device rate, and the GPU memory in use);
  - with --streams 1,2,4,...: how many concurrent streams keep up with real time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from common import bandwidth_gbs, gpu_used_mb, load_methods, on_gpu, peak_rss_mb, print_results, rss_mb, warm_up


def speech(seconds: float, rate: int) -> np.ndarray:
    """Synthetic speech-like audio (a voiced harmonic stack with syllable-rate bursts)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 8))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    rng = np.random.default_rng(0)
    return (0.1 * voiced * envelope + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def method_timings(model_dir: Path, steps: int) -> dict:
    run = load_methods(model_dir)
    md = json.loads((model_dir / "manifest.json").read_text())["metadata"]
    # random inputs, never zeros (a GPU kernel can run faster on zeros than on real data)
    rng = np.random.default_rng(0)
    mel = rng.standard_normal((1, md["num_mel_bins"], md["mel_frames_per_token"])).astype(np.float32)
    warm_up(lambda: run("encode", [mel, np.array([0])]))
    enc_times = []
    for i in range(1, steps + 1):
        t = time.perf_counter()
        run("encode", [mel, np.array([i])])
        enc_times.append(time.perf_counter() - t)
    n = md["max_encoder_tokens"]
    batch_mel = rng.standard_normal((1, md["num_mel_bins"], md["mel_frames_per_token"] * n)).astype(np.float32)
    batch_times = []
    for i in range(max(3, steps // 10)):
        t = time.perf_counter()
        run("encode", [batch_mel, np.array([steps + 1 + i * n])])
        batch_times.append((time.perf_counter() - t) / n)
    embeds = (0.02 * rng.standard_normal((1, 39, md["dim"]))).astype(np.float32)
    ids = rng.integers(1000, 2000, (1, 39), dtype=np.int64)
    delay = np.array([6.0], dtype=np.float32)
    warm_up(lambda: run("decode", [embeds, ids, np.array([0]), delay]), seconds=0.5, min_calls=2)
    warm_up(lambda: run("decode", [embeds[:, :1], ids[:, :1], np.array([39]), delay]))
    t = time.perf_counter()
    run("decode", [embeds, ids, np.array([0]), delay])
    prefill = time.perf_counter() - t
    dec_times = []
    for pos in range(39, 39 + steps):
        t = time.perf_counter()
        run("decode", [embeds[:, :1], ids[:, :1], np.array([pos]), delay])
        dec_times.append(time.perf_counter() - t)
    return {
        "encoder_ms_per_chunk_streaming": 1e3 * statistics.median(enc_times),
        f"encoder_ms_per_chunk_batched_{n}": 1e3 * statistics.median(batch_times),
        "decoder_prefill_ms_39_positions": 1e3 * prefill,
        "decoder_ms_per_step": 1e3 * statistics.median(dec_times),
        "decoder_ms_per_step_p95": 1e3 * float(np.percentile(dec_times, 95)),
    }


def concurrent_streams(transcriber, audio: np.ndarray, counts: list[int]) -> dict:
    """N sessions at once, each streaming the clip in 100 ms chunks from its own thread (fed
    as fast as they go): a count keeps up with real time when the wall time of the whole
    batch is at most the clip's length. Returns wall / audio seconds per count, stopping
    at the first that falls behind or whose sessions do not fit (a clear error, reported)."""
    import threading

    rate = transcriber.sample_rate
    seconds, chunk = len(audio) / rate, rate // 10
    out = {}
    from voxtral_native.errors import VoxtralError

    for n in counts:
        try:
            sessions = [transcriber.session() for _ in range(n)]
        except VoxtralError as e:  # e.g. GPU memory for n sessions' state: the count does not fit
            out[f"streams_{n}"] = f"cannot open {n} sessions: {str(e).split('. ')[0]}"
            break
        barrier = threading.Barrier(n + 1)

        errors = []

        def stream(session, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                for i in range(0, len(audio), chunk):
                    session.feed(audio[i : i + chunk])
                    session.drain()
                session.flush()
            except Exception as e:  # a thread's exception would vanish: the count fails instead
                errors.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=stream, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        ratio = (time.perf_counter() - t0) / seconds
        if errors:
            raise RuntimeError(f"{len(errors)} of {n} concurrent streams failed: {errors[0]}")
        out[f"streams_{n}_wall_per_audio_second"] = ratio
        del sessions
        if ratio > 1.0:
            break
    kept = [n for n in counts if out.get(f"streams_{n}_wall_per_audio_second", 2.0) <= 1.0]
    out["realtime_streams_held_(largest_count_tried_that_kept_up)"] = max(kept, default=0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0, help="audio length (default 20)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=50, help="method-level repetitions (default 50)")
    parser.add_argument("--latency-ms", type=int, default=0, help="extra latency for batching a stream (default 0)")
    parser.add_argument("--streams", default="", help="concurrent stream counts to try, e.g. 1,2,4,8 (default none)")
    args = parser.parse_args()

    import voxtral_native
    from voxtral_native.transcriber import Transcriber

    start_rss = rss_mb()
    transcriber = Transcriber(args.model_dir, threads=args.threads, latency_ms=args.latency_ms)
    session = transcriber.session()  # maps the program, plans its memory
    loaded_rss = rss_mb()
    rate = transcriber.sample_rate
    audio = speech(args.seconds, rate)

    # Streaming: 100 ms chunks as a live source delivers them (fed as fast as possible).
    chunk = rate // 10
    # A first stream of 2 s warms up what runs once per process (XNNPACK packs its weights;
    # AOTInductor's first call per shape, the GPU's kernel loads): reported apart.
    t0 = time.perf_counter()
    warm = transcriber.session()
    for i in range(0, 2 * rate, chunk):
        warm.feed(audio[i : i + chunk])
        warm.drain()
    warm.flush()
    first_stream_2s = time.perf_counter() - t0
    # warm stays open until the second session below is measured: closed, its Program would
    # serve that session (the runner keeps a closed session's Program) and hide what a new
    # concurrent one costs.
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
    del second, warm
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
        "latency_ms_(batching)": args.latency_ms,
        "algorithmic_delay_ms": transcriber.delay_ms + 2.5 + args.latency_ms,
        "first_stream_of_2s_seconds_(cold)": first_stream_2s,
        "rss_before_load_mb": start_rss,
        "rss_after_load_mb": loaded_rss,
        "session_planned_mb": transcriber.session_memory_bytes / 1e6,
        "second_session_rss_mb_after_2s": second_session_mb,
    }
    gpu = on_gpu(manifest)
    if gpu:
        results["gpu_used_mb_(weights, one session's state, allocator cache)"] = gpu_used_mb()
    results.update(method_timings(args.model_dir, args.steps))
    if args.streams:
        results.update(concurrent_streams(transcriber, audio, [int(n) for n in args.streams.split(",")]))
        if gpu:
            results["gpu_used_mb_after_streams"] = gpu_used_mb()
    bandwidth = bandwidth_gbs(manifest)
    # Bytes one decoder step reads: the decoder's share of the program (its layers dominate:
    # 26 of 58 transformer layers but 3x wider) is bounded above by the whole program; plus
    # the KV cache in use at this position (K and V, 8 heads x 128, 26 layers).
    kv_element = 4 if manifest["options"]["dtype"] == "fp32" else 2
    kv_bytes_per_pos = 2 * 26 * 8 * 128 * kv_element if md["dim"] == 3072 else 0
    positions = 39 + args.steps
    step_bytes = manifest["program_bytes"] + kv_bytes_per_pos * positions
    results.update({
        ("gpu_copy_bandwidth_gbs" if gpu else "copy_bandwidth_gbs"): bandwidth,
        "decoder_step_bound_ms_(program+kv)/bandwidth": 1e3 * step_bytes / (bandwidth * 1e9),
        "peak_rss_mb": peak_rss_mb(),
    })  # fmt: skip
    print_results(results)


if __name__ == "__main__":
    main()
