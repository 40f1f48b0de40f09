"""Speech audio out: float32 chunks from the synthesizer -> bytes of the requested format.

Streamed as synthesized: `pcm` (raw 16-bit little-endian, as OpenAI's), `wav` (16-bit PCM
after a header whose lengths say "unknown", as a stream must) and `opus` (Ogg pages as
libsndfile writes them). Sent whole at the end: `flac` and `mp3`, whose encoders go back to
rewrite their headers on close (FLAC's STREAMINFO, MP3's Xing frame count); a stream of the
bytes as first written decodes short or not at all with common readers, so those two wait
for the last sample and are complete, seekable files.
"""

from __future__ import annotations

import io
import struct

import numpy as np

# response_format -> (media type, streamed as synthesized)
FORMATS = {
    "wav": ("audio/wav", True),
    "pcm": ("audio/pcm", True),
    "opus": ("audio/ogg", True),
    "flac": ("audio/flac", False),
    "mp3": ("audio/mpeg", False),
}
_SOUNDFILE = {"opus": ("OGG", "OPUS"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}


def pcm16(chunk: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> 16-bit little-endian PCM, clipped here only (16 bits need it)."""
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono PCM WAV header for a stream of unknown length: the RIFF and data sizes
    are 0xFFFFFFFF, which readers take as "until the end" (the length is not known when the
    header must go out, and a stream cannot seek back to patch it)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)  # PCM, mono, rate, bytes/s, align, bits
    return b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + \
        b"data" + struct.pack("<I", unknown)  # fmt: skip


class _Sink(io.RawIOBase):
    """A seekable in-memory file for libsndfile that hands out the bytes appended since the
    last take(); rewrites of bytes already handed out (header patches on close) stay here."""

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0
        self._taken = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b) -> int:
        b = bytes(b)
        self._buf[self._pos : self._pos + len(b)] = b
        self._pos += len(b)
        return len(b)

    def readinto(self, b) -> int:
        n = max(0, min(len(b), len(self._buf) - self._pos))
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else len(self._buf) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        new = bytes(self._buf[self._taken :])
        self._taken = len(self._buf)
        return new

    def whole(self) -> bytes:
        return bytes(self._buf)


class Encoder:
    """encode(chunk) -> bytes to send now; finish() -> the rest. One per response."""

    def __init__(self, response_format: str, sample_rate: int):
        self.format = response_format
        self.media_type, self.streamed = FORMATS[response_format]
        self._header = wav_stream_header(sample_rate) if response_format == "wav" else b""
        self._file = None
        if response_format in _SOUNDFILE:
            import soundfile

            container, subtype = _SOUNDFILE[response_format]
            self._sink = _Sink()
            self._file = soundfile.SoundFile(self._sink, "w", samplerate=sample_rate, channels=1, format=container,
                                             subtype=subtype)  # fmt: skip

    def start(self) -> bytes:
        return self._header

    def encode(self, chunk: np.ndarray) -> bytes:
        if self._file is None:
            return pcm16(chunk)
        self._file.write(chunk)
        return self._sink.take() if self.streamed else b""

    def finish(self) -> bytes:
        if self._file is None:
            return b""
        self._file.close()
        return self._sink.take() if self.streamed else self._sink.whole()

    def close(self) -> None:
        """Drops the encoder without output (the client left)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
