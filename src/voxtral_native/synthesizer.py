"""Text-to-speech from Python: Synthesizer (one loaded model) and SynthesisSession (one request).

    from voxtral_native import Synthesizer
    tts = Synthesizer("mistralai/Voxtral-4B-TTS-2603")         # or an exported / checkpoint dir
    audio = tts.synthesize("Hello there.", voice="casual_male")  # 24 kHz float32
    for chunk in tts.stream("A long story ..."):                 # plays while it is synthesized
        speaker.write(chunk)
    tts.save("Bonjour.", "bonjour.wav", voice="fr_female")

The audio is the model's, untouched: exactly 1920 samples per emitted frame (80 ms), no
clipping, gain, fade or trimming; long text is spoken as several utterances (split at
sentence ends) with `pause_frames` frames of silence between them. The same seed gives the
same samples in every run, thread and process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from voxtral_native.errors import InvalidArgumentError, StateError

MAX_SEED = 2**64 - 1


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError(f"seed must be an integer in [0, 2**64 - 1], got {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidArgumentError(f"seed must be in [0, 2**64 - 1], got {seed}")
    return seed


def _check_max_frames(max_frames) -> int:
    if max_frames is None:
        return 0
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames <= 0:
        raise InvalidArgumentError(f"max_frames must be a positive number of 80 ms frames (None: no limit), "
                                   f"got {max_frames!r}")
    return int(max_frames)


class SynthesisSession:
    """The pull API over one request: next() -> the next chunk of audio (float32), until done.

    A session is one request: a call while another thread is inside one raises StateError
    instead of racing. Iterating it yields the chunks."""

    def __init__(self, native_session, sample_rate: int, n_codebooks: int):
        self._session = native_session
        self.sample_rate = sample_rate
        self._n_codebooks = n_codebooks
        self._busy = threading.Lock()

    @contextmanager
    def _exclusive(self, what: str):
        if not self._busy.acquire(blocking=False):
            raise StateError(f"{what}: this session is in use by another thread (use one session per request)")
        try:
            yield
        finally:
            self._busy.release()

    @property
    def done(self) -> bool:
        return self._session.done

    @property
    def frames(self) -> int:
        """Frames emitted so far (80 ms each; the pauses between utterances excluded)."""
        return self._session.frames

    @property
    def utterances(self) -> int:
        return self._session.utterances

    def next(self) -> np.ndarray:
        """Runs the model until the next chunk is ready (GIL released) and returns it; the
        first after 0.4 s of audio, then 2 s each. StateError once done."""
        with self._exclusive("next()"):
            samples, _, _ = self._session.next()
        return samples

    def codes(self) -> np.ndarray:
        """[frames, 37] int64: the codes of every frame emitted so far (shifted by 2)."""
        return self._session.codes().reshape(-1, self._n_codebooks)

    def __iter__(self) -> Iterator[np.ndarray]:
        while not self.done:
            chunk = self.next()
            if chunk.size:
                yield chunk


class Synthesizer:
    """A loaded text-to-speech model (shareable between threads; one session per request).

    model: an exported artifact directory, a Mistral checkpoint directory (exported on first
    use and cached) or a Hugging Face repo id. voice: the default voice (None: the model's,
    `default_voice`). seed: the default seed (any integer in [0, 2**64 - 1]). threads:
    runtime threads (default: one per core; process-wide).
    """

    def __init__(self, model: str | os.PathLike = "mistralai/Voxtral-4B-TTS-2603", voice: str | None = None,
                 seed: int = 42, threads: int | None = None, *, export_options: dict | None = None,
                 progress=print):  # fmt: skip
        from voxtral_native import native
        from voxtral_native.models import resolve_model

        core = native()
        if threads is not None:
            core.set_num_threads(threads)
        self.seed = _check_seed(seed)
        self.model_dir: Path = resolve_model(model, "tts", export_options, progress)
        self._runner = core.TtsRunner.load(str(self.model_dir))
        meta = self._runner.metadata
        self.sample_rate: int = meta["sample_rate"]
        self.samples_per_frame: int = meta["samples_per_frame"]
        self._n_codebooks: int = meta["n_codebooks"]
        self.voice = self._check_voice(voice) if voice is not None else self._runner.default_voice

    def _check_voice(self, voice) -> str:
        if not isinstance(voice, str) or voice not in self._runner.voices:
            raise InvalidArgumentError(f"unknown voice {voice!r}; this model has: {', '.join(self.voices)}")
        return voice

    @property
    def voices(self) -> list[str]:
        return list(self._runner.voices)

    @property
    def default_voice(self) -> str:
        return self._runner.default_voice

    @property
    def session_memory_bytes(self) -> int:
        """Memory each session plans (mostly the LM's KV cache); the weights are shared."""
        return self._runner.session_memory_bytes

    @property
    def metadata(self) -> dict:
        return dict(self._runner.metadata)

    def split_text(self, text: str, voice: str | None = None) -> list[str]:
        """The utterances `text` is spoken as."""
        return list(self._runner.split_text(self._check_text(text), self._check_voice(voice or self.voice)))

    @staticmethod
    def _check_text(text) -> str:
        # Empty or whitespace-only text is the runner's to refuse: one rule for what counts
        # as whitespace (str.strip's differs from the splitter's), the same in C++ and here.
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text must be a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: the binding would only say "incompatible arguments"
            raise InvalidArgumentError(f"the text is not valid UTF-8: a lone surrogate at index {e.start}") from None
        return text

    def session(self, text: str, voice: str | None = None, seed: int | None = None, max_frames: int | None = None,
                temperature: float = 0.0, pause_frames: int = 3) -> SynthesisSession:  # fmt: skip
        """A request: `max_frames` counts emitted frames (None: until the model ends each
        utterance); `temperature` > 0 samples the semantic code (0: greedy)."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise InvalidArgumentError(f"temperature must be a number >= 0, got {temperature!r}")
        if isinstance(pause_frames, bool) or not isinstance(pause_frames, int) or not 0 <= pause_frames <= 1000:
            raise InvalidArgumentError(f"pause_frames must be an integer in [0, 1000], got {pause_frames!r}")
        native = self._runner.new_session(
            self._check_text(text), self._check_voice(voice or self.voice),
            self.seed if seed is None else _check_seed(seed), _check_max_frames(max_frames),
            float(temperature), pause_frames,
        )  # fmt: skip
        return SynthesisSession(native, self.sample_rate, self._n_codebooks)

    def stream(self, text: str, voice: str | None = None, seed: int | None = None,
               max_frames: int | None = None, **options) -> Iterator[np.ndarray]:  # fmt: skip
        """float32 chunks as they are synthesized; concatenated, exactly synthesize()'s samples."""
        yield from self.session(text, voice, seed, max_frames, **options)

    def synthesize(self, text: str, voice: str | None = None, seed: int | None = None,
                   max_frames: int | None = None, **options) -> np.ndarray:  # fmt: skip
        """The whole audio: 1-D float32 at sample_rate."""
        chunks = list(self.stream(text, voice, seed, max_frames, **options))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def save(self, text: str, path: str | os.PathLike, voice: str | None = None, seed: int | None = None,
             max_frames: int | None = None, format: str | None = None, subtype: str | None = None,
             **options) -> Path:  # fmt: skip
        """Synthesizes into an audio file (WAV, FLAC, OGG, ... as soundfile writes them; the
        format from the suffix unless given), streaming chunk by chunk to the file."""
        from voxtral_native.audio import AudioFileWriter

        session = self.session(text, voice, seed, max_frames, **options)  # bad input fails before a file exists
        with AudioFileWriter(path, self.sample_rate, format, subtype) as f:
            for chunk in session:
                f.write(chunk)
        return Path(path)
