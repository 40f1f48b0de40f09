"""What one server holds: the loaded models (once), their ids, the session budget, the config."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from voxtral_native.server.budget import SessionBudget
from voxtral_native.server.config import ServerConfig
from voxtral_native.server.errors import ApiError


def model_id(given: str | None, model_dir: Path) -> str:
    """The id clients name a model by: a Hugging Face repo id as given, else the directory's
    name (a server path is not shown to clients)."""
    if given is not None and not Path(given).exists():
        return given
    return model_dir.name


@dataclass
class Served:
    config: ServerConfig
    budget: SessionBudget
    api_key: str | None = None  # None: no key needed
    transcriber: object | None = None  # voxtral_native.Transcriber
    synthesizer: object | None = None  # voxtral_native.Synthesizer
    stt_id: str | None = None
    tts_id: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def stt(self, model: str | None):
        """The transcriber for a request naming `model` (None: the one loaded)."""
        if self.transcriber is None:
            raise ApiError(404, "this server has no speech-to-text model (start it with --stt MODEL)",
                           code="model_not_found")  # fmt: skip
        if model not in (None, "", self.stt_id):
            raise ApiError(404, f"the model '{model}' does not exist here; this server transcribes with "
                           f"'{self.stt_id}'", "model", "model_not_found")  # fmt: skip
        return self.transcriber

    def tts(self, model: str | None):
        if self.synthesizer is None:
            raise ApiError(404, "this server has no text-to-speech model (start it with --tts MODEL)",
                           code="model_not_found")  # fmt: skip
        if model not in (None, "", self.tts_id):
            raise ApiError(404, f"the model '{model}' does not exist here; this server speaks with "
                           f"'{self.tts_id}'", "model", "model_not_found")  # fmt: skip
        return self.synthesizer


def served(request: Request) -> Served:
    return request.app.state.served
