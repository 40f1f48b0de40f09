"""Where offline speech-to-text spends its time: per-method totals of one transcription.

    VOXTRAL_PROFILE=1 python benchmarks/stt_offline_profile.py MODEL_DIR [--seconds 20] [--threads 2]

Transcribes 1 s (a warm-up that loads and packs the weights), then `--seconds` of the
synthetic speech of benchmarks/stt.py, and prints the offline real-time factor. With
VOXTRAL_PROFILE=1, libvoxtral prints at exit the time of every method by the shape of its
first input (its table includes the warm-up's calls: one prefill and a few short calls).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stt import speech


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from voxtral_native import Transcriber

    transcriber = Transcriber(args.model_dir, threads=args.threads)
    rate = 16000
    transcriber.transcribe(speech(1.0, rate))
    audio = speech(args.seconds, rate)
    start = time.perf_counter()
    transcriber.transcribe(audio)
    seconds = time.perf_counter() - start
    print(f"offline {args.seconds:.0f} s of audio: {seconds:.2f} s, RTF {seconds / args.seconds:.3f}")


if __name__ == "__main__":
    main()
