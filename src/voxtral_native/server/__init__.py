"""An OpenAI-compatible speech server (the [server] extra: FastAPI + uvicorn).

    voxtral-native serve --stt models/stt --tts models/tts     # http://127.0.0.1:8000/

Routes: POST /v1/audio/transcriptions, POST /v1/audio/speech, GET /v1/audio/voices,
GET /v1/models, GET /health, WS /v1/realtime, and a web page at /. Each model is loaded
once; every request runs on its own session of it (docs/architecture.md, "The server").
"""

from __future__ import annotations

from voxtral_native.server.config import ServerConfig


def create_app(config: ServerConfig, transcriber=None, synthesizer=None):
    from voxtral_native.server.app import create_app as create

    return create(config, transcriber, synthesizer)


def uvicorn_options(config: ServerConfig) -> dict:
    """How uvicorn runs the app: the address, the WebSocket message limit, keep-alive and ping
    timeouts (a dead peer is dropped even when it never sends a close)."""
    return {"host": config.host, "port": config.port, "ws_max_size": config.ws_max_message_bytes,
            "timeout_keep_alive": 5, "ws_ping_interval": 20.0, "ws_ping_timeout": 20.0}  # fmt: skip


def serve(config: ServerConfig) -> None:
    """Loads the models and serves until interrupted."""
    import uvicorn

    app = create_app(config)
    uvicorn.run(app, log_level="info", **uvicorn_options(config))


__all__ = ["ServerConfig", "create_app", "serve", "uvicorn_options"]
