"""Speech-to-text from Python: Transcriber (one loaded model) and Session (one stream).

    from voxtral_native import Transcriber
    t = Transcriber("mistralai/Voxtral-Mini-4B-Realtime-2602")   # or an exported / checkpoint dir
    print(t.transcribe("meeting.wav").text)
    for piece in t.stream(microphone_chunks()):                    # 16 kHz float32 arrays
        print(piece, end="", flush=True)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxtral_native.audio import load_audio, resample, to_mono_float32
from voxtral_native.errors import NotFoundError


@dataclass(frozen=True)
class Piece:
    """One decoder step: its token and text (empty for control tokens)."""

    text: str
    token_id: int
    step: int  # 0 for the first output token, then one per 80 ms of audio
    time_s: float  # audio time the step closes (text lags the audio by the delay)


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # every generated id, one per step, control included
    pieces: list[Piece] = field(default_factory=list)


def words_from_pieces(pieces: list[Piece], token_s: float, word_token: int | None) -> list[Word]:
    """Words from text pieces: a word starts at a piece beginning with whitespace or after
    a [STREAMING_WORD] boundary; it spans the steps of its pieces."""
    words: list[Word] = []
    current, start, end, boundary = "", 0.0, 0.0, True
    for p in pieces:
        if p.token_id == word_token:
            boundary = True
            continue
        if not p.text:
            continue
        if (boundary or p.text[:1].isspace()) and current.strip():
            words.append(Word(current.strip(), start, end))
            current = ""
        if not current.strip():
            start = p.time_s
        current += p.text
        end = p.time_s + token_s
        boundary = False
    if current.strip():
        words.append(Word(current.strip(), start, end))
    return words


class Session:
    """The pull API over one stream: feed(samples), drain() -> new pieces, flush()."""

    def __init__(self, native_session, sample_rate: int):
        self._session = native_session
        self.sample_rate = sample_rate

    def feed(self, samples, sample_rate: int | None = None) -> None:
        """Appends audio (float or int PCM, mono or [frames, channels]); the GIL is released
        while the model runs."""
        audio = to_mono_float32(samples)
        rate = sample_rate or self.sample_rate
        self._session.feed(resample(audio, rate, self.sample_rate))

    def drain(self) -> list[Piece]:
        return [Piece(*p) for p in self._session.drain()]

    def flush(self) -> list[Piece]:
        """Ends the input and returns the remaining pieces."""
        self._session.flush()
        return self.drain()


class Transcriber:
    """A loaded speech-to-text model (shareable between threads; one Session per stream).

    model: an exported artifact directory, a Mistral checkpoint directory (exported on
    first use and cached) or a Hugging Face repo id. delay_ms: how far text lags the audio
    (a multiple of 80 from 80 to 1200, or 2400). threads: runtime threads (default: one
    per core; process-wide).
    """

    def __init__(self, model: str | os.PathLike = "mistralai/Voxtral-Mini-4B-Realtime-2602", delay_ms: int = 480,
                 threads: int | None = None, *, export_options: dict | None = None, progress=print):
        from voxtral_native import native
        from voxtral_native.models import resolve_model

        core = native()
        if threads is not None:
            core.set_num_threads(threads)
        self.model_dir: Path = resolve_model(model, export_options, progress)
        self._runner = core.SttRunner.load(str(self.model_dir), delay_ms)
        meta = self._runner.metadata
        self.sample_rate: int = meta["sample_rate"]
        self._token_s = meta["samples_per_token"] / self.sample_rate
        self._word_token = self._special_id("[STREAMING_WORD]")

    def _special_id(self, name: str) -> int | None:
        try:
            return self._runner.id_of(name)
        except NotFoundError:  # this tokenizer has no such token
            return None

    @property
    def delay_ms(self) -> int:
        return self._runner.delay_ms

    @property
    def session_memory_bytes(self) -> int:
        """Memory each session (stream) plans: activations and state, mostly its KV caches.
        The weights are shared by all sessions."""
        return self._runner.session_memory_bytes

    def session(self) -> Session:
        return Session(self._runner.new_session(), self.sample_rate)

    def transcribe(self, audio, sample_rate: int | None = None) -> Transcript:
        """Whole audio (a path soundfile reads, or an array with its sample_rate) -> Transcript."""
        samples = load_audio(audio, sample_rate, self.sample_rate)
        session = self.session()
        session.feed(samples)
        pieces = session.drain() + session.flush()
        return Transcript(
            text="".join(p.text for p in pieces),
            words=words_from_pieces(pieces, self._token_s, self._word_token),
            tokens=[p.token_id for p in pieces if p.token_id >= 0],
            pieces=pieces,
        )

    def stream(self, chunks: Iterable, sample_rate: int | None = None) -> Iterator[str]:
        """Text pieces as audio chunks arrive (arrays of any size), then the rest at the end."""
        session = self.session()
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if chunk.size == 0:
                continue
            session.feed(chunk, sample_rate)
            for piece in session.drain():
                if piece.text:
                    yield piece.text
        for piece in session.flush():
            if piece.text:
                yield piece.text

