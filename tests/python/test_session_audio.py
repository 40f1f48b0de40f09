"""The Python Session's audio path, without a model: one streaming resampler per session,
so any chunking of a 44.1 / 48 / 8 kHz stream reaches the runner as the samples of the
whole clip resampled at once; one rate per stream; two threads in one session are refused."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soxr

from voxtral_native import errors
from voxtral_native.transcriber import Session


class RecordingSession:
    """Stands in for the native SttSession: keeps what it is fed."""

    def __init__(self, block: threading.Event | None = None):
        self.fed: list[np.ndarray] = []
        self.flushed = False
        self.block = block
        self.entered = threading.Event()

    def feed(self, samples):
        assert samples.dtype == np.float32 and samples.ndim == 1 and samples.flags.c_contiguous
        self.entered.set()
        if self.block is not None:
            self.block.wait(5)
        self.fed.append(samples.copy())

    def drain(self):
        return []

    def flush(self):
        self.flushed = True


def _clip(rate: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(rate)
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1900 * t)
    return (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _streamed(audio: np.ndarray, rate: int, sizes: list[int]) -> np.ndarray:
    native = RecordingSession()
    session = Session(native, 16000)
    start, i = 0, 0
    while start < len(audio):
        session.feed(audio[start : start + sizes[i % len(sizes)]], sample_rate=rate)
        start, i = start + sizes[i % len(sizes)], i + 1
    session.flush()
    assert native.flushed
    return np.concatenate(native.fed) if native.fed else np.zeros(0, np.float32)


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
@pytest.mark.parametrize("chunking", ["1 sample", "100 ms", "mixed"])
def test_any_chunking_gives_the_whole_clip_resampled(rate, chunking):
    audio = _clip(rate, 0.25 if chunking == "1 sample" else 1.5)
    sizes = {"1 sample": [1], "100 ms": [rate // 10], "mixed": [1, 1000, 37, rate // 10, 4410, 3]}[chunking]
    whole = soxr.resample(audio, rate, 16000, quality="HQ").astype(np.float32)
    streamed = _streamed(audio, rate, sizes)
    # The same number of samples (no drift of word times) ...
    assert streamed.size == whole.size
    # ... and the same values: soxr's stream and one-shot paths run the same filter (measured
    # max difference 0.0 with soxr 1.0; the bound leaves room for other builds), where a
    # per-chunk resampler left 0.04-0.09 at the chunk edges of these clips.
    assert np.abs(streamed - whole).max() < 1e-4


def test_the_model_rate_passes_through_untouched():
    audio = _clip(16000)
    assert np.array_equal(_streamed(audio, 16000, [1000, 7]), audio)


def test_one_rate_per_stream():
    session = Session(RecordingSession(), 16000)
    session.feed(np.zeros(4800, np.float32), sample_rate=48000)
    with pytest.raises(errors.InvalidArgumentError, match="started at 48000 Hz.*44100 Hz"):
        session.feed(np.zeros(4410, np.float32), sample_rate=44100)
    for bad in (-1, 0, 44100.5, "44100", True):  # 0 is not "the default"
        with pytest.raises(errors.InvalidArgumentError, match="positive whole number of Hz"):
            Session(RecordingSession(), 16000).feed(np.zeros(10, np.float32), sample_rate=bad)


def test_two_threads_in_one_session_are_refused():
    release = threading.Event()
    native = RecordingSession(block=release)
    session = Session(native, 16000)
    worker = threading.Thread(target=session.feed, args=(np.zeros(100, np.float32),))
    worker.start()
    assert native.entered.wait(5)
    try:
        for call in (lambda: session.feed(np.zeros(10, np.float32)), session.drain, session.flush):
            with pytest.raises(errors.StateError, match="in use by another thread"):
                call()
    finally:
        release.set()
        worker.join(5)
    session.feed(np.zeros(10, np.float32))  # free again once the first call returned
    assert len(native.fed) == 2
