"""Audio in: files (anything soundfile reads) and arrays (float or int16/int32, mono or
multi-channel, any rate) become float32 mono at the model's rate, resampled with soxr.
Audio out: float32 chunks written into a file as they come (AudioFileWriter)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from voxtral_native.errors import InvalidArgumentError, NotFoundError, VoxtralIOError


def read_audio_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32, sample rate) of an audio file."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"audio file {path} does not exist")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise InvalidArgumentError(f"{path} is not an audio file soundfile can read ({e})") from None
    return data, int(rate)


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """[n] or [n, channels] of float or integer PCM -> [n] float32 in [-1, 1]."""
    a = np.asarray(samples)
    if a.ndim not in (1, 2):
        raise InvalidArgumentError(f"audio must be [frames] or [frames, channels], got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] > 16 and a.shape[0] <= 16:
        raise InvalidArgumentError(f"audio of shape {a.shape} looks channels-first; pass [frames, channels] (array.T)")
    if a.dtype == np.int16:
        out = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        out = (a / 2147483648.0).astype(np.float32)
    elif a.dtype == np.uint8:  # 8-bit WAV PCM is unsigned
        out = (a.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(a.dtype, np.floating):
        out = a.astype(np.float32, copy=False)
    else:
        raise InvalidArgumentError(f"unsupported audio dtype {a.dtype} (use float, int16, int32 or uint8)")
    if out.ndim == 2:
        out = out.mean(axis=1, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InvalidArgumentError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(out)


def check_sample_rate(rate) -> int:
    """`rate` as an int: a positive whole number of Hz, else InvalidArgumentError."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not rate > 0 \
            or rate != int(rate):
        raise InvalidArgumentError(f"sample rate must be a positive whole number of Hz, got {rate!r}")
    return int(rate)


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    rate = check_sample_rate(rate)
    if rate == target_rate or samples.size == 0:
        return samples
    import soxr

    return soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def load_audio(audio, sample_rate: int | None, target_rate: int) -> np.ndarray:
    """A path or an array (with `sample_rate`; default target_rate) -> float32 mono at target_rate."""
    if isinstance(audio, (str, os.PathLike)):
        data, rate = read_audio_file(audio)
        if sample_rate is not None and sample_rate != rate:
            raise InvalidArgumentError(f"{audio} is {rate} Hz but sample_rate={sample_rate} was given")
    elif isinstance(audio, (bytes, bytearray)):
        raise InvalidArgumentError("pass a path or a numpy array, not bytes (soundfile.read(io.BytesIO(b)) decodes them)")
    else:
        data, rate = audio, sample_rate if sample_rate is not None else target_rate
    samples = resample(to_mono_float32(data), rate, target_rate)
    if samples.size == 0:
        raise InvalidArgumentError("audio is empty")
    return samples


class AudioFileWriter:
    """A mono audio file written chunk by chunk (WAV, FLAC, OGG, ... as soundfile writes them;
    the format from the suffix unless given). WAV defaults to 32-bit float, so the file holds
    exactly the samples written, unclipped. Errors are VoxtralIOError naming the path."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, format: str | None = None,
                 subtype: str | None = None):  # fmt: skip
        import soundfile as sf

        self.path = Path(path)
        self._errors = (sf.LibsndfileError, TypeError, ValueError)
        if subtype is None and (format or self.path.suffix.lstrip(".")).upper() == "WAV":
            subtype = "FLOAT"
        try:
            self._file = sf.SoundFile(self.path, "w", samplerate=sample_rate, channels=1, format=format, subtype=subtype)
        except (*self._errors, OSError) as e:  # unknown format, unwritable path
            raise VoxtralIOError(f"cannot write audio to '{self.path}': {e}") from None

    def write(self, chunk: np.ndarray) -> None:
        try:
            self._file.write(chunk)
        except (*self._errors, OSError) as e:  # disk full
            raise VoxtralIOError(f"cannot write audio to '{self.path}': {e}") from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "AudioFileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
