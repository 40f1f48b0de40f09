"""Memory of a long live stream: feeds synthetic speech in 100 ms chunks for N minutes of
audio (as fast as the machine runs) and samples resident memory once per audio minute.

    python benchmarks/stt_soak.py MODEL_DIR [--minutes 10]

A live session must run indefinitely with flat memory: ring KV caches, a bounded mel
overlap, and consumed audio embeddings dropped. Prints RSS per minute and the growth from
minute 1 to the end (the first minute includes the one-time allocations).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import rss_mb
from stt import speech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()

    from voxtral_native.transcriber import Transcriber

    transcriber = Transcriber(args.model_dir)
    rate = transcriber.sample_rate
    minute = speech(60.0, rate)  # one minute, repeated
    session = transcriber.session()
    chunk = rate // 10
    samples, pieces, t0 = [], 0, time.perf_counter()
    for m in range(int(args.minutes)):
        for i in range(0, len(minute), chunk):
            session.feed(minute[i : i + chunk])
            pieces += len(session.drain())
        samples.append(rss_mb())
        print(f"minute {m + 1:3d}: rss {samples[-1]:9.1f} MB, {pieces} steps, "
              f"{time.perf_counter() - t0:7.1f} s compute", flush=True)
    growth = samples[-1] - samples[0]
    print(f"rss growth from minute 1 to minute {len(samples)}: {growth:+.1f} MB "
          f"({growth / max(1, len(samples) - 1):+.2f} MB per audio minute)")


if __name__ == "__main__":
    main()
