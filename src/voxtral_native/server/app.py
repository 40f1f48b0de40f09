"""The FastAPI application: models loaded once, routes, limits, auth, errors, the web page.

    app = create_app(ServerConfig(stt="models/stt", tts="models/tts"))   # loads both models
    uvicorn.run(app, host="127.0.0.1", port=8000)

Tests and embedders may pass models already loaded (`transcriber=`, `synthesizer=`); the server
then serves sessions of those objects.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from voxtral_native.server import auth, errors, realtime, speech, transcriptions
from voxtral_native.server.budget import SessionBudget, available_memory_bytes
from voxtral_native.server.config import ServerConfig
from voxtral_native.server.limits import LimitsMiddleware
from voxtral_native.server.state import Served, model_id, served

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
BUDGET_FRACTION = 0.8  # of the memory available after loading, when no budget is given


def _check_key(request: Request) -> None:
    auth.check_http(served(request).api_key, request)


meta = APIRouter()


@meta.get("/v1/models")
async def list_models(request: Request):
    state = served(request)
    ids = [(state.stt_id, "speech-to-text"), (state.tts_id, "text-to-speech")]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": state.created, "owned_by": "voxtral-native",
                                        "task": task} for i, task in ids if i is not None]}  # fmt: skip


@meta.get("/health")
async def health(request: Request):
    return {"status": "ok", **served(request).budget.snapshot()}


def _page(name: str) -> str:
    return resources.files("voxtral_native.server").joinpath("static", name).read_text(encoding="utf-8")


def default_budget_bytes(*models) -> int:
    """Session memory when none is configured: BUDGET_FRACTION of what is available after
    loading, less one session's memory per model, which its runner keeps in the closed
    session's Program for the next session (weights stay packed) and is not free for others."""
    idle = sum(m.session_memory_bytes for m in models if m is not None)
    return max(0, int(available_memory_bytes() * BUDGET_FRACTION) - idle)


def create_app(config: ServerConfig, transcriber=None, synthesizer=None) -> FastAPI:
    """The app, with the models of `config` loaded (or the ones given)."""
    if transcriber is None and config.stt is not None:
        from voxtral_native.transcriber import Transcriber

        transcriber = Transcriber(config.stt, delay_ms=config.delay_ms, threads=config.threads)
    if synthesizer is None and config.tts is not None:
        from voxtral_native.synthesizer import Synthesizer

        synthesizer = Synthesizer(config.tts, seed=config.default_seed, threads=config.threads)
    if transcriber is None and synthesizer is None:
        raise ValueError("give a speech-to-text model (--stt), a text-to-speech model (--tts) or both")
    budget_bytes = config.memory_budget_bytes or default_budget_bytes(transcriber, synthesizer)
    state = Served(
        config=config, budget=SessionBudget(budget_bytes, config.max_sessions), api_key=config.resolved_api_key(),
        transcriber=transcriber, synthesizer=synthesizer,
        stt_id=model_id(config.stt, transcriber.model_dir) if transcriber is not None else None,
        tts_id=model_id(config.tts, synthesizer.model_dir) if synthesizer is not None else None,
    )  # fmt: skip

    app = FastAPI(title="voxtral-native", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = state
    errors.install(app)
    keyed = [Depends(_check_key)]
    app.include_router(meta, dependencies=keyed)
    app.include_router(transcriptions.router, dependencies=keyed)
    app.include_router(speech.router, dependencies=keyed)
    app.include_router(realtime.router)  # checks the key itself: a socket is refused before it is accepted

    # The page holds no data and calls nothing by itself: it is served without a key and asks
    # for one when the server has one (sent as a bearer header, and as a subprotocol on the socket).
    page = _page("index.html")

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    app.add_middleware(LimitsMiddleware, body_limits={TRANSCRIPTIONS_PATH: config.max_upload_bytes},
                       default_limit=config.max_json_bytes, idle_timeout_s=config.idle_timeout_s)  # fmt: skip
    return app
