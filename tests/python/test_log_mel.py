"""voxtral_native._core.LogMel against HF's VoxtralRealtimeFeatureExtractor.

Within 1e-4 (max abs) on real speech, silence, the stream-padded clip and noise, for the
whole clip and for chunked feeding (fixed, random and hypothesis-drawn chunkings): chunked
runs give the whole-clip frames bit for bit. HF runs the STFT in float32, libvoxtral in
double; the difference is HF's rounding (< 7e-5 on these clips).
"""

from __future__ import annotations

import functools
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxtral_native import _core, errors

import transformers  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
TOL = 1e-4
SAMPLES_PER_TOKEN = 1280  # the stream schedule's 80 ms token at 16 kHz
LEFT_PAD_TOKENS = 32
RIGHT_PAD_TOKENS = 17  # delay 6 + 1 + 10 at 480 ms


def load_wav(name: str) -> np.ndarray:
    with wave.open(str(DATA / name)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def stream_padded(x: np.ndarray) -> np.ndarray:
    """The clip as the stream schedule pads it: 32 tokens of zeros before; after, zeros
    to a whole token plus 17 tokens."""
    tail = (-len(x)) % SAMPLES_PER_TOKEN + RIGHT_PAD_TOKENS * SAMPLES_PER_TOKEN
    z = np.zeros(LEFT_PAD_TOKENS * SAMPLES_PER_TOKEN, np.float32)
    return np.concatenate([z, x, np.zeros(tail, np.float32)])


@functools.cache
def clip(case: str) -> np.ndarray:
    if case.endswith(".wav"):
        return load_wav(case)
    if case == "silence":
        return np.zeros(3 * 16000 + 123, np.float32)
    if case == "padded":
        return stream_padded(load_wav("speech_en_flite.wav"))
    if case == "noise":
        return (np.random.default_rng(0).standard_normal(2 * 16000 + 7) * 0.3).astype(np.float32)
    raise KeyError(case)


@functools.cache
def extractor(**kwargs):
    return transformers.VoxtralRealtimeFeatureExtractor(**kwargs)


def hf_features(x: np.ndarray, **kwargs) -> np.ndarray:
    out = extractor(**kwargs)(x, sampling_rate=16000, return_tensors="np").input_features
    assert out.shape[0] == 1
    return out[0]  # [n_mels, frames]


@functools.cache
def hf_case(case: str) -> np.ndarray:
    return hf_features(clip(case))


def run(x: np.ndarray, chunks=None, mel: _core.LogMel | None = None, **kwargs) -> np.ndarray:
    """Frames of x fed in chunks of the given sizes (cycled; whole clip if None), read as
    they come, then finish()."""
    mel = mel or _core.LogMel(**kwargs)
    parts = []
    if chunks is None:
        mel.feed(x)
    else:
        at, i = 0, 0
        while at < len(x):
            k = chunks[i % len(chunks)]
            mel.feed(x[at : at + k])
            at, i = at + k, i + 1
            parts.append(mel.read())
    mel.finish()
    parts.append(mel.read())
    return np.concatenate(parts, axis=1)


CASES = ["speech_en_espeak.wav", "speech_en_flite.wav", "speech_fr_espeak.wav", "silence", "padded", "noise"]


@pytest.mark.parametrize("case", CASES)
def test_whole_clip_matches_hf(case):
    x, ref = clip(case), hf_case(case)
    got = run(x)
    assert got.dtype == np.float32 and got.shape == ref.shape == (128, len(x) // 160)
    err = float(np.abs(got - ref).max())
    print(f"{case}: max abs error vs HF {err:.3g} over {ref.shape[1]} frames")
    assert err <= TOL
    if case == "silence":
        assert np.all(got == np.float32(-0.625))  # (1.5 - 8 + 4) / 4


@pytest.mark.parametrize("case", CASES)
def test_chunked_is_whole_clip(case):
    x = clip(case)
    whole = run(x)
    rng = np.random.default_rng(len(x))
    for chunks in ([37], [160, 1280, 1, 399], list(rng.integers(1, 3000, 64))):
        got = run(x, chunks)
        np.testing.assert_array_equal(got, whole)
    assert np.abs(whole - hf_case(case)).max() <= TOL


def test_one_sample_at_a_time():
    x = clip("speech_en_flite.wav")[:16000]
    np.testing.assert_array_equal(run(x, [1]), run(x))
    assert np.abs(run(x, [1]) - hf_features(x)).max() <= TOL


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 2500), min_size=1, max_size=40), st.integers(201, 12000))
def test_any_chunking(chunks, n):
    x = clip("speech_en_espeak.wav")[8000 : 8000 + n]
    got = run(x, chunks)
    np.testing.assert_array_equal(got, run(x))
    ref = hf_features(x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= TOL


@pytest.mark.parametrize("n", [201, 202, 359, 360, 361, 400, 401, 1280, 1281, 16000])
def test_frame_count(n):
    x = clip("noise")[:n]
    mel = _core.LogMel()
    mel.feed(x)
    streamed = mel.frames_ready  # frame j once samples to j * 160 + 200 exist, j < n // 160
    assert streamed == min(n // 160, (n - 200) // 160 + 1)
    mel.finish()
    got = mel.read()
    assert mel.frames_produced == mel.num_frames(n) == n // 160
    ref = hf_features(x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= TOL


def numpy_reference(x: np.ndarray, n_fft=400, hop=160, log_max=1.5) -> np.ndarray:
    """Float64 log-mel with numpy.pad(mode="reflect"), which also pads clips of n_fft / 2
    samples or fewer, where torch.stft refuses."""
    fb = extractor().mel_filters.astype(np.float32).astype(np.float64)
    p = n_fft // 2
    xp = np.pad(x.astype(np.float64), (p, p), mode="reflect")
    n_frames = (len(xp) - n_fft) // hop  # torch's 1 + that, minus the dropped last frame
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([xp[j * hop : j * hop + n_fft] * win for j in range(n_frames)] or [np.zeros(n_fft)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log = np.maximum(np.log10(np.maximum(fb.T @ power.T, 1e-10)), log_max - 8)
    return ((log + 4) / 4)[:, :n_frames]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 50, 159, 160, 161, 200])
def test_short_clips_reflect_like_numpy(n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.2).astype(np.float32)
    got = run(x)
    assert got.shape == (128, n // 160)
    if n > 0:  # numpy cannot reflect-pad an empty clip
        np.testing.assert_allclose(got, numpy_reference(x), atol=1e-5, rtol=0)
    for chunks in ([1], [7, 3]):
        np.testing.assert_array_equal(run(x, chunks), got)


def test_other_constants_from_config():
    """Nothing is tied to 400/160/128: a 512-point FFT, hop 128, 80 mels, log max 1.0."""
    kw = dict(feature_size=80, n_fft=512, win_length=512, hop_length=128, global_log_mel_max=1.0)
    x = clip("speech_en_flite.wav")[:40000]
    ref = hf_features(x, **kw)
    mel_kw = dict(n_fft=512, hop_length=128, num_mel_bins=80, global_log_mel_max=1.0)
    got = run(x, **mel_kw)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= TOL
    np.testing.assert_array_equal(run(x, [333, 1], **mel_kw), got)


def test_read_and_state():
    mel = _core.LogMel()
    assert (mel.sample_rate, mel.n_fft, mel.hop_length, mel.num_mel_bins) == (16000, 400, 160, 128)
    assert mel.global_log_mel_max == 1.5 and mel.f_min == 0.0 and mel.f_max == 8000.0
    mel.feed(clip("noise")[:5000])
    n = mel.frames_ready
    first = mel.read(max_frames=3)
    assert first.shape == (128, 3) and mel.frames_ready == n - 3
    rest = mel.read()
    assert rest.shape == (128, n - 3) and mel.frames_ready == 0
    assert mel.read().shape == (128, 0)
    mel.feed(np.zeros(10, np.float64))  # converted to float32
    assert mel.samples_fed == 5010
    mel.finish()
    assert mel.finished
    mel.finish()  # idempotent
    with pytest.raises(errors.StateError):
        mel.feed(np.zeros(10, np.float32))
    mel.reset()
    assert not mel.finished and mel.samples_fed == 0 and mel.frames_produced == 0
    np.testing.assert_array_equal(run(clip("noise"), mel=mel), run(clip("noise")))


def test_errors():
    mel = _core.LogMel()
    x = np.ones(1000, np.float32)
    x[500] = np.nan
    with pytest.raises(errors.InvalidArgumentError, match="not finite"):
        mel.feed(x)
    x[500] = np.inf
    with pytest.raises(ValueError):
        mel.feed(x)
    assert mel.samples_fed == 0  # a rejected chunk is not consumed
    with pytest.raises(ValueError):
        mel.feed(np.zeros((2, 100), np.float32))
    for bad in (
        dict(hop_length=0),
        dict(hop_length=401),
        dict(num_mel_bins=0),
        dict(n_fft=1),
        dict(sample_rate=0),
        dict(f_max=8001.0),
        dict(f_min=-1.0),
        dict(f_min=9000.0),
        dict(global_log_mel_max=float("nan")),
    ):
        with pytest.raises(errors.InvalidArgumentError):
            _core.LogMel(**bad)


def test_speed_print():
    """Not a timed test: prints the cost per frame in the runner's 80 ms chunks."""
    x = clip("noise")
    x = np.concatenate([x] * 5)
    mel = _core.LogMel()
    t0 = time.perf_counter()
    for at in range(0, len(x), SAMPLES_PER_TOKEN):
        mel.feed(x[at : at + SAMPLES_PER_TOKEN])
        mel.read()
    dt = time.perf_counter() - t0
    print(f"LogMel: {dt / mel.frames_produced * 1e6:.2f} us per frame incl. Python calls ({mel.frames_produced} frames)")
