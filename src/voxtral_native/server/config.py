"""What a server is told at start: models, address, key and limits (the `serve` command's flags)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

API_KEY_ENV = "VOXTRAL_API_KEY"  # read when --api-key is not given
MiB = 1 << 20


@dataclass
class ServerConfig:
    stt: str | None = None  # speech-to-text model: artifact dir, checkpoint dir or repo id (None: no STT routes)
    tts: str | None = None  # text-to-speech model, the same forms (None: no TTS routes)
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    api_key: str | None = None  # every API route and the WebSocket need "Authorization: Bearer KEY"
    cors_origins: list[str] = field(default_factory=list)  # none: no CORS headers at all
    # Bytes all live sessions may plan together (each model states its session_memory_bytes);
    # None: 80% of the memory available once the models are loaded. Past it: 503, never an OOM kill.
    memory_budget_bytes: int | None = None
    max_sessions: int | None = None  # a cap on live sessions besides memory (None: memory alone)
    max_upload_bytes: int = 25 * MiB  # a transcription upload, the whole multipart body (OpenAI's limit)
    max_json_bytes: int = 1 * MiB  # any other request body
    max_input_chars: int = 4096  # speech input text (OpenAI's limit)
    # Audio one speech request may produce: a bound on its cost (the model ends each utterance
    # itself; this stops one that does not, e.g. random weights).
    max_speech_seconds: float = 600.0
    max_audio_seconds: float = 3 * 3600.0  # one uploaded file, decoded
    idle_timeout_s: float = 60.0  # a socket that sends or reads nothing for this long is closed
    ws_max_message_bytes: int = 4 * MiB  # one WebSocket message (base64 audio: ~87 s of 24 kHz PCM16)
    delay_ms: int | None = None  # the transcriber's delay (None: the model's)
    threads: int | None = None  # runtime threads (None: one per core)
    default_seed: int = 42  # speech seed when a request gives none

    def resolved_api_key(self) -> str | None:
        return self.api_key if self.api_key is not None else (os.environ.get(API_KEY_ENV) or None)
