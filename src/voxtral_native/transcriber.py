"""Speech-to-text from Python: Transcriber (one loaded model) and Session (one stream).

    from voxtral_native import Transcriber
    t = Transcriber("mistralai/Voxtral-Mini-4B-Realtime-2602")   # or an exported / checkpoint dir
    print(t.transcribe("meeting.wav").text)
    for piece in t.stream(microphone_chunks()):                    # 16 kHz float32 arrays
        print(piece, end="", flush=True)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxtral_native.audio import check_sample_rate, load_audio, to_mono_float32
from voxtral_native.errors import InvalidArgumentError, NotFoundError, StateError


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
    """The pull API over one stream: feed(samples), drain() -> new pieces, flush().

    Audio at another rate goes through one streaming resampler per session (soxr's
    ResampleStream), so chunk edges leave no seams and no extra samples: a stream in any
    chunking gets the samples of the whole clip resampled at once. A session is one stream:
    a call while another thread is inside one raises StateError instead of racing.
    """

    def __init__(self, native_session, sample_rate: int):
        self._session = native_session
        self.sample_rate = sample_rate
        self._input_rate: int | None = None  # the rate of the first feed; fixed for the stream
        self._resampler = None  # soxr.ResampleStream [input_rate -> sample_rate], or None
        self._busy = threading.Lock()

    @contextmanager
    def _exclusive(self, what: str):
        if not self._busy.acquire(blocking=False):
            raise StateError(f"{what}: this session is in use by another thread (use one session per stream)")
        try:
            yield
        finally:
            self._busy.release()

    def _resample(self, audio: np.ndarray, rate: int, last: bool) -> np.ndarray:
        if self._input_rate is None:
            rate = check_sample_rate(rate)
            self._input_rate = rate
            if rate != self.sample_rate:
                import soxr

                self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32", quality="HQ")
        elif rate != self._input_rate:
            raise InvalidArgumentError(
                f"this stream started at {self._input_rate} Hz; a chunk at {rate} Hz needs a new session"
            )
        if self._resampler is None:
            return audio
        return self._resampler.resample_chunk(audio, last=last)

    def feed(self, samples, sample_rate: int | None = None) -> None:
        """Appends audio (float or int PCM, mono or [frames, channels]) at `sample_rate`
        (default: the model's; one rate per stream); the GIL is released while the model runs."""
        audio = to_mono_float32(samples)
        with self._exclusive("feed()"):
            out = self._resample(audio, self.sample_rate if sample_rate is None else sample_rate, last=False)
            if out.size:
                self._session.feed(np.ascontiguousarray(out, dtype=np.float32))

    def drain(self) -> list[Piece]:
        with self._exclusive("drain()"):
            return [Piece(*p) for p in self._session.drain()]

    @property
    def decode_calls(self) -> int:
        """Decoder program calls so far (fewer than decoded tokens where speculation paid)."""
        return self._session.decode_calls

    def flush(self) -> list[Piece]:
        """Ends the input (the resampler's tail included) and returns the remaining pieces."""
        with self._exclusive("flush()"):
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                self._resampler = None
                if tail.size:
                    self._session.feed(np.ascontiguousarray(tail, dtype=np.float32))
            self._session.flush()
        return self.drain()


class Transcriber:
    """A loaded speech-to-text model (shareable between threads; one Session per stream).

    model: an exported artifact directory, a Mistral checkpoint directory (exported on
    first use and cached) or a Hugging Face repo id. delay_ms: how far text lags the audio
    (a multiple of 80 from 80 to 1200, or 2400; None: the program's default, 480 ms for the
    released model). threads: runtime threads (default: one
    per core; process-wide). speculative_tokens: positions per decoder call inside runs of
    one token ([STREAMING_PAD] above all) when audio is waiting (None: 8; 1: one step per call);
    the text is the same either way, only the speed differs. latency_ms: extra latency a
    stream may take to batch its audio, in whole 80 ms tokens (240 gathers 4 tokens per
    encoder call, whose decoder steps then go in one speculative call; at most the program's
    max_encoder_tokens - 1 tokens); the text is the same again.
    """

    def __init__(self, model: str | os.PathLike = "mistralai/Voxtral-Mini-4B-Realtime-2602",
                 delay_ms: int | None = None,
                 threads: int | None = None, *, speculative_tokens: int | None = None, latency_ms: int = 0,
                 export_options: dict | None = None, progress=print):
        from voxtral_native import native
        from voxtral_native.models import resolve_model

        if delay_ms is not None and (isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms <= 0):
            raise InvalidArgumentError(f"delay_ms must be a positive number of ms (None: the model's default), "
                                       f"got {delay_ms!r}")
        core = native()
        if threads is not None:
            core.set_num_threads(threads)
        self.model_dir: Path = resolve_model(model, "stt", export_options, progress)
        if speculative_tokens is not None and (isinstance(speculative_tokens, bool) or not isinstance(speculative_tokens, int)
                                               or speculative_tokens < 1):  # fmt: skip
            raise InvalidArgumentError(f"speculative_tokens must be a positive count (None: the model's), "
                                       f"got {speculative_tokens!r}")
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or latency_ms < 0:
            raise InvalidArgumentError(f"latency_ms must be a number of ms >= 0, got {latency_ms!r}")
        self._runner = core.SttRunner.load(str(self.model_dir), 0 if delay_ms is None else delay_ms,
                                           -1 if speculative_tokens is None else speculative_tokens,
                                           1 + latency_ms // 80)  # fmt: skip
        meta = self._runner.metadata
        self.sample_rate: int = meta["sample_rate"]
        self._step_s = meta["samples_per_token"] / self.sample_rate
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
    def seconds_per_step(self) -> float:
        """Audio per decoder step (0.08 s): a Piece's time_s advances by this much per step."""
        return self._step_s

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
        return self.transcript(session.drain() + session.flush())

    def transcript(self, pieces: list[Piece]) -> Transcript:
        """A Transcript (text, timed words, tokens) from a session's pieces, in order: what
        transcribe() returns, for callers that ran the session themselves."""
        return Transcript(
            text="".join(p.text for p in pieces),
            words=words_from_pieces(pieces, self._step_s, self._word_token),
            tokens=[p.token_id for p in pieces if p.token_id >= 0],
            pieces=list(pieces),
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

