"""What a new session costs when sessions run one after another (a script transcribing file
after file, a server answering one request at a time): the first call of a session loads its
methods, and on XNNPACK loading packs the weights unless a live Program already holds them.

    python benchmarks/sessions.py --stt /work/art/stt-full-8da4w --threads 2
    python benchmarks/sessions.py --tts /work/art/tts-full-def --threads 2

For each model: seconds to the first output of (1) the process's first session, (2) a session
started after the previous one was closed, (3) a session started beside a live one, (4) the
same as (2) again. (2) and (4) against (3) show whether closed sessions' weights are kept.
VOXTRAL_VERBOSE=1 adds libvoxtral's own line per method load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from common import print_results


def stt_first_text_s(transcriber, audio: np.ndarray) -> float:
    """Seconds from a new session to the end of its first 2 s of audio (fed in 100 ms chunks)."""
    t0 = time.perf_counter()
    session = transcriber.session()
    chunk = transcriber.sample_rate // 10
    for i in range(0, 2 * transcriber.sample_rate, chunk):
        session.feed(audio[i : i + chunk])
        session.drain()
    return time.perf_counter() - t0


def tts_first_audio_s(synth) -> float:
    t0 = time.perf_counter()
    session = synth.session("Hello there, this is a test of the first chunk.", max_frames=8, seed=1)
    next(iter(session))
    return time.perf_counter() - t0


def measure(first_output, new_live) -> dict:
    """first_output() runs one session to its first output and closes it; new_live() opens one
    that stays open (returned) while the next is measured."""
    first = first_output()
    closed = [first_output() for _ in range(2)]
    live = new_live()
    beside = first_output()
    del live
    return {
        "first_session_s": first,
        "after_a_closed_session_s_(median of 2)": statistics.median(closed),
        "beside_a_live_session_s": beside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stt", help="speech-to-text artifact")
    parser.add_argument("--tts", help="text-to-speech artifact")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    results: dict = {}
    if args.stt:
        from voxtral_native import Transcriber

        t = Transcriber(args.stt, threads=args.threads, progress=None)
        audio = (0.1 * np.random.default_rng(0).standard_normal(2 * t.sample_rate)).astype(np.float32)

        def live_stt():
            s = t.session()
            s.feed(audio[: t.sample_rate // 10])
            return s

        results.update({f"stt_{k}": v for k, v in measure(lambda: stt_first_text_s(t, audio), live_stt).items()})
    if args.tts:
        from voxtral_native import Synthesizer

        s = Synthesizer(args.tts, threads=args.threads, progress=None)

        def live_tts():
            session = s.session("Held open.", max_frames=8, seed=2)
            next(iter(session))
            return session

        results.update({f"tts_{k}": v for k, v in measure(lambda: tts_first_audio_s(s), live_tts).items()})
    print_results(results)


if __name__ == "__main__":
    main()
