"""Speculative decoding through token runs: what a k-position decode call costs against k
one-position calls, and the real-time factor that gives at a given acceptance rate.

    python benchmarks/stt_speculative.py MODEL_DIR [--seconds 20] [--threads 2] [--repeats 20]

Reports (medians; compare ratios on a shared CPU):
  - decode ms per call over k = 1..8 positions (libvoxtral's Program, past the prompt);
  - measured end to end: offline transcription with speculation off (speculative_tokens=1)
    and on (8): real-time factor, decoder calls, tokens, and the acceptance rate of the
    guesses (guessed positions kept / guessed positions). Random weights fall into one
    repeated token (the tied table feeds each output back as the next input), so their
    acceptance is near 1: the measured run is the best case;
  - derived, for acceptance rates a = 0.5 .. 0.95 (each guess holding independently with
    probability a, as in a PAD run that ends at a random step): tokens per call
    E(k) = (1 - a^k) / (1 - a), decoder ms per token t(k) / E(k), and the real-time factor
    with the measured encoder share, for the best k.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from common import load_methods, print_results
from stt import speech


def call_ms(model_dir: Path, repeats: int) -> dict[int, float]:
    import json

    md = json.loads((model_dir / "manifest.json").read_text())["metadata"]
    run = load_methods(model_dir)
    delay = np.array([6.0], dtype=np.float32)
    p = 39
    run("decode", [np.zeros((1, p, md["dim"]), np.float32), np.ones((1, p), np.int64), np.array([0]), delay])
    out, pos = {}, p
    for k in range(1, min(8, md["max_decoder_tokens"]) + 1):
        times = []
        for _ in range(repeats):
            embeds = np.zeros((1, k, md["dim"]), np.float32)
            t = time.perf_counter()
            run("decode", [embeds, np.ones((1, k), np.int64), np.array([pos]), delay])
            times.append(time.perf_counter() - t)
            pos += 1  # one position kept per call, the rest rewritten by the next: a rollback each time
        out[k] = 1e3 * statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import voxtral_native

    results: dict = {"model_dir": str(args.model_dir)}
    runs = {}
    for spec in (1, 8):
        t = voxtral_native.Transcriber(args.model_dir, threads=args.threads, speculative_tokens=spec)
        audio = speech(args.seconds, t.sample_rate)
        s = t.session()
        start = time.perf_counter()
        s.feed(audio)
        pieces = s.drain() + s.flush()
        runs[spec] = (time.perf_counter() - start, s.decode_calls, len(pieces))
        results[f"rtf_offline_speculative_{spec}"] = runs[spec][0] / args.seconds
        results[f"decode_calls_speculative_{spec}"] = runs[spec][1]
    results["tokens"] = runs[1][2]
    results["tokens_per_call_speculative_8"] = runs[8][2] / runs[8][1]
    results["threads"] = voxtral_native.native().num_threads()
    ms = call_ms(args.model_dir, args.repeats)
    for k, v in ms.items():
        results[f"decode_ms_{k}_positions"] = v
    # The encoder's share of the plain run: what speculation cannot remove.
    decode_s = runs[1][2] * ms[1] / 1e3
    encoder_s = max(runs[1][0] - decode_s, 0.0)
    results["offline_encoder_and_rest_s_(plain run minus its decode calls)"] = encoder_s
    for a in (0.5, 0.7, 0.8, 0.9, 0.95):
        best = min(ms, key=lambda k: ms[k] / ((1 - a**k) / (1 - a)))
        per_token = ms[best] / ((1 - a**best) / (1 - a))
        rtf = (encoder_s + runs[1][2] * per_token / 1e3) / args.seconds
        results[f"acceptance_{a}: best_k, decoder_ms_per_token, rtf_offline"] = f"{best}, {per_token:.1f}, {rtf:.2f}"
    print_results(results)


if __name__ == "__main__":
    main()
