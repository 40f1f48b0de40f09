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
        return self._model(self.transcriber, self.stt_id, model, "speech-to-text", "--stt", "transcribes")

    def tts(self, model: str | None):
        return self._model(self.synthesizer, self.tts_id, model, "text-to-speech", "--tts", "speaks")

    @staticmethod
    def _model(loaded, loaded_id: str | None, model: str | None, task: str, flag: str, verb: str):
        if loaded is None:
            raise ApiError(404, f"this server has no {task} model (start it with {flag} MODEL)", code="model_not_found")
        if model not in (None, "", loaded_id):
            raise ApiError(404, f"the model '{model}' does not exist here; this server {verb} with '{loaded_id}'",
                           "model", "model_not_found")  # fmt: skip
        return loaded


def served(request: Request) -> Served:
    return request.app.state.served
