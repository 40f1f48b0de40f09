"""POST /v1/audio/speech (text -> audio, streamed as it is synthesized) and GET /v1/audio/voices.

The request's session is made before the response starts, so bad text, voice or seed is a 400,
not a broken stream. Then each chunk the session yields (the first after 0.4 s of audio, then
2 s each) is encoded and sent while the next is synthesized; a client that goes away stops the
session after the chunk in hand. The samples are `Synthesizer.synthesize` with the same seed.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from voxtral_native.errors import VoxtralError
from voxtral_native.server.encoding import FORMATS, Encoder
from voxtral_native.server.errors import bad_request, from_voxtral, log
from voxtral_native.server.responses import SessionStreamingResponse
from voxtral_native.server.state import served

router = APIRouter()


class SpeechRequest(BaseModel):
    """OpenAI's speech parameters; `seed` is ours (the same seed gives the same samples)."""

    model_config = ConfigDict(extra="forbid")

    input: str
    model: str | None = None
    voice: str | None = None  # one of GET /v1/audio/voices (None: the model's default)
    response_format: str = "mp3"  # OpenAI's default
    speed: float = 1.0
    instructions: str | None = None
    stream_format: str = "audio"
    seed: int | None = None


def _check(req: SpeechRequest, synthesizer, max_chars: int) -> None:
    if req.response_format not in FORMATS:
        raise bad_request(f"unsupported response_format '{req.response_format}'; use one of {', '.join(FORMATS)}",
                          "response_format")  # fmt: skip
    if req.voice is not None and req.voice not in synthesizer.voices:
        # Checked against the model's own list: a voice name never reaches the file system.
        raise bad_request(f"unknown voice '{req.voice}'; this model has: {', '.join(synthesizer.voices)}", "voice")
    if not req.input.strip():
        raise bad_request("input is empty", "input", "empty_input")
    if len(req.input) > max_chars:
        raise bad_request(f"input is {len(req.input)} characters; the limit is {max_chars}", "input",
                          "string_above_max_length")  # fmt: skip
    if req.speed != 1.0:
        raise bad_request("this model speaks at its own pace; speed must be 1.0", "speed", "unsupported_parameter")
    if req.instructions:
        raise bad_request("this model takes no instructions (choose a voice instead)", "instructions",
                          "unsupported_parameter")  # fmt: skip
    if req.seed is not None and not 0 <= req.seed <= 2**64 - 1:
        raise bad_request("seed must be an integer in [0, 2**64 - 1]", "seed")
    if req.stream_format != "audio":
        raise bad_request("only stream_format 'audio' is supported (the audio itself, chunked)", "stream_format",
                          "unsupported_parameter")  # fmt: skip


@router.post("/v1/audio/speech")
async def create_speech(req: SpeechRequest, request: Request):
    state = served(request)
    synthesizer = state.tts(req.model)
    _check(req, synthesizer, state.config.max_input_chars)
    seed = state.config.default_seed if req.seed is None else req.seed
    max_frames = max(1, int(state.config.max_speech_seconds * synthesizer.sample_rate / synthesizer.samples_per_frame))
    reservation = state.budget.reserve("tts", synthesizer.session_memory_bytes)
    try:
        session = await anyio.to_thread.run_sync(lambda: synthesizer.session(req.input, req.voice, seed, max_frames))
    except VoxtralError as e:
        reservation.release()
        raise from_voxtral(e, "input") from None
    except BaseException:
        reservation.release()
        raise
    encoder = Encoder(req.response_format, synthesizer.sample_rate)
    return SessionStreamingResponse(_audio(session, encoder), reservation, media_type=encoder.media_type)


async def _audio(session, encoder: Encoder):
    try:
        head = encoder.start()
        if head:
            yield head
        while not session.done:
            chunk = await anyio.to_thread.run_sync(session.next)
            data = encoder.encode(chunk) if chunk.size else b""
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail
    except VoxtralError as e:
        # Headers are out: all that is left is to end the stream early (and say why in the log).
        log.error("speech synthesis failed mid-stream: %s", e)
    finally:
        encoder.close()


@router.get("/v1/audio/voices")
async def list_voices(request: Request):
    synthesizer = served(request).tts(None)
    return {"object": "list", "default": synthesizer.default_voice,
            "data": [{"id": v, "object": "voice", "name": v} for v in synthesizer.voices]}  # fmt: skip
