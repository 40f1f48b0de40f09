"""POST /v1/audio/transcriptions: an uploaded file -> text, as OpenAI's (json, text, verbose_json,
srt, vtt; stream=true: server-sent transcript.text.delta / transcript.text.done events).

The file is decoded block by block and fed to a session of the loaded transcriber as it is read,
so memory stays bounded by the block, not the file, and a client that goes away stops its
session after the block in hand. Audio at any rate goes through the session's streaming
resampler, which gives the samples of the whole clip resampled at once: the text is
`Transcriber.transcribe` on the same file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from voxtral_native.errors import VoxtralError
from voxtral_native.server import transcripts
from voxtral_native.server.errors import ApiError, bad_request, from_voxtral
from voxtral_native.server.responses import SessionStreamingResponse, sse
from voxtral_native.server.state import served

router = APIRouter()

FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
BLOCK_S = 2.0  # audio read and fed per native call: how soon a gone client's session stops


class _Decoded:
    """An uploaded file opened for block reads (soundfile: WAV, FLAC, OGG, MP3, ...)."""

    def __init__(self, upload: UploadFile, max_seconds: float):
        import soundfile

        self.name = upload.filename or "file"
        self._errors = (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError)
        try:
            self.file = soundfile.SoundFile(upload.file)
        except self._errors as e:
            raise bad_request(f"could not decode '{self.name}' as audio ({_reason(e)}); send WAV, FLAC, OGG "
                              "(Vorbis, Opus) or MP3", "file", "invalid_audio") from None  # fmt: skip
        self.rate = self.file.samplerate
        self.max_frames = int(max_seconds * self.rate)
        if 0 <= self.file.frames < (1 << 62) and self.file.frames > self.max_frames:  # unknown lengths read huge
            raise bad_request(f"'{self.name}' is {self.file.frames / self.rate:.0f} s long; this server takes at "
                              f"most {max_seconds:.0f} s per file", "file", "audio_too_long")  # fmt: skip
        self.frames_read = 0

    def read(self, seconds: float):
        try:
            block = self.file.read(int(seconds * self.rate), dtype="float32", always_2d=True)
        except self._errors as e:
            raise bad_request(f"'{self.name}' is corrupt after {self.frames_read / self.rate:.2f} s "
                              f"({_reason(e)})", "file", "invalid_audio") from None  # fmt: skip
        self.frames_read += len(block)
        if self.frames_read > self.max_frames:
            raise bad_request(f"'{self.name}' is longer than this server's limit of "
                              f"{self.max_frames / self.rate:.0f} s", "file", "audio_too_long")  # fmt: skip
        return block

    @property
    def seconds(self) -> float:
        return self.frames_read / self.rate

    def close(self) -> None:
        self.file.close()


def _reason(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__


async def _pieces(request: Request, transcriber, audio: _Decoded) -> AsyncIterator[list]:
    """The session's new pieces after each block, then the flush's; stops early if the client left."""
    session = None

    def step():
        nonlocal session
        if session is None:  # made here, off the event loop: a session allocates its caches
            session = transcriber.session()
        block = audio.read(BLOCK_S)
        if len(block) == 0:
            return session.flush(), True
        session.feed(block, audio.rate)
        return session.drain(), False

    while True:
        try:
            pieces, done = await anyio.to_thread.run_sync(step)
        except VoxtralError as e:
            raise from_voxtral(e, "file") from None
        yield pieces
        if done:
            if audio.frames_read == 0:
                raise bad_request(f"'{audio.name}' holds no audio samples", "file", "audio_empty")
            return
        if await request.is_disconnected():
            return


def _check_options(response_format: str, stream: bool, granularities: list[str], prompt: str | None,
                   temperature: float | None, include: list[str]) -> None:  # fmt: skip
    if response_format not in FORMATS:
        raise bad_request(f"unsupported response_format '{response_format}'; use one of {', '.join(FORMATS)}",
                          "response_format")  # fmt: skip
    if stream and response_format not in ("json", "text"):
        raise bad_request("stream=true sends transcript.text events; response_format must be json or text",
                          "stream")  # fmt: skip
    bad = sorted(set(granularities) - {"word", "segment"})
    if bad:
        raise bad_request(f"unknown timestamp_granularities {bad}; use word and/or segment", "timestamp_granularities")
    if granularities and response_format != "verbose_json":
        raise bad_request("timestamp_granularities needs response_format=verbose_json", "timestamp_granularities")
    if prompt:
        raise bad_request(
            "this model takes no prompt (it transcribes the audio alone)", "prompt", "unsupported_parameter"
        )
    if temperature not in (None, 0.0):
        raise bad_request("this model decodes greedily; temperature must be 0 or absent", "temperature",
                          "unsupported_parameter")  # fmt: skip
    if include:
        raise bad_request(f"include {include} is not supported (the model computes no log probabilities)",
                          "include", "unsupported_parameter")  # fmt: skip


@router.post("/v1/audio/transcriptions")
async def create_transcription(
    request: Request,
    file: UploadFile,
    model: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    stream: Annotated[bool, Form()] = False,
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    temperature: Annotated[float | None, Form()] = None,
    timestamp_granularities: Annotated[list[str], Form(alias="timestamp_granularities[]")] = [],  # noqa: B006
    include: Annotated[list[str], Form(alias="include[]")] = [],  # noqa: B006
):
    state = served(request)
    transcriber = state.stt(model)
    _check_options(response_format, stream, timestamp_granularities, prompt, temperature, include)
    audio = await anyio.to_thread.run_sync(_Decoded, file, state.config.max_audio_seconds)
    reservation = state.budget.reserve("stt", transcriber.session_memory_bytes)
    if stream:
        return SessionStreamingResponse(_sse(request, transcriber, audio), reservation,
                                        media_type="text/event-stream", headers={"Cache-Control": "no-cache"})  # fmt: skip
    with reservation:
        try:
            pieces = [p async for block in _pieces(request, transcriber, audio) for p in block]
        finally:
            audio.close()
    transcript = transcriber.transcript(pieces)
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "json":
        return JSONResponse({"text": transcript.text, "usage": transcripts.usage(audio.seconds)})
    if response_format == "verbose_json":
        return JSONResponse(transcripts.verbose(transcript, transcriber.seconds_per_step, audio.seconds, language,
                                                set(timestamp_granularities)))  # fmt: skip
    segs = transcripts.segments(pieces, transcriber.seconds_per_step)
    body = transcripts.srt(segs) if response_format == "srt" else transcripts.vtt(segs)
    return PlainTextResponse(body, media_type="text/vtt" if response_format == "vtt" else "application/x-subrip")


async def _sse(request: Request, transcriber, audio: _Decoded):
    text = []
    try:
        async for block in _pieces(request, transcriber, audio):
            for p in block:
                if p.text:
                    text.append(p.text)
                    yield sse({"type": "transcript.text.delta", "delta": p.text})
        yield sse({"type": "transcript.text.done", "text": "".join(text), "usage": transcripts.usage(audio.seconds)})
    except ApiError as e:  # the status line has gone out: the error travels as an event (OpenAI's clients raise it)
        yield sse(e.body())
    finally:
        audio.close()
