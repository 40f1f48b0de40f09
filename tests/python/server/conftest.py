"""Server fixtures: the tiny artifacts loaded once, servers on loopback ports, test audio.

A server runs uvicorn in a thread of the test process on a port the OS picks, serving
sessions of the same loaded Transcriber / Synthesizer the tests compare against.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

SPEECH_SECONDS = 1.6  # speech requests of the tiny model (random weights never end an utterance)


class LiveServer:
    def __init__(self, app, **uvicorn_overrides):
        import uvicorn

        from voxtral_native.server import uvicorn_options

        options = {**uvicorn_options(app.state.served.config), "host": "127.0.0.1", "port": 0, **uvicorn_overrides}
        self.app = app
        # log_config=None: uvicorn's records reach the root logger, where the test sees them (no_errors_logged)
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def budget(self) -> dict:
        return self.app.state.served.budget.snapshot()

    def wait_idle(self, timeout: float = 20.0) -> dict:
        """The budget once every session has ended (a failure names what is still live)."""
        deadline = time.monotonic() + timeout
        while self.budget["sessions"] and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.budget

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the server did not stop"


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    """Every server test: nothing the server or uvicorn logs reaches ERROR (an unexpected
    exception, a traceback), whatever the client did."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR
              and r.name.startswith(("uvicorn", "voxtral_native.server"))]  # fmt: skip
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


@pytest.fixture(scope="session")
def transcriber(tiny_stt_artifact):
    from voxtral_native import Transcriber

    return Transcriber(tiny_stt_artifact, progress=lambda _: None)


@pytest.fixture(scope="session")
def synthesizer(tiny_tts_artifact):
    from voxtral_native import Synthesizer

    return Synthesizer(tiny_tts_artifact, progress=lambda _: None)


@pytest.fixture(scope="session")
def base_config():
    from voxtral_native.server import ServerConfig

    return ServerConfig(memory_budget_bytes=1 << 40, max_speech_seconds=SPEECH_SECONDS)


@pytest.fixture(scope="session")
def server(base_config, transcriber, synthesizer):
    """One server for the tests that do not change its settings."""
    from voxtral_native.server import create_app

    live = LiveServer(create_app(base_config, transcriber, synthesizer))
    yield live
    live.stop()


@pytest.fixture
def make_server(base_config, transcriber, synthesizer):
    """make_server(**config fields) -> a LiveServer with those settings, stopped after the test."""
    from voxtral_native.server import create_app

    started = []

    def make(**fields):
        live = LiveServer(create_app(replace(base_config, **fields), transcriber, synthesizer))
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


def speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """int16 audio with the texture of speech (voiced bursts, pauses, noise); random weights
    do not care what is said, only that the text is the same through every path."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 6))
    envelope = (np.sin(2 * np.pi * 2.3 * t) > -0.2).astype(float)
    x = 0.3 * voiced * envelope + 0.02 * rng.standard_normal(t.size)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int, format: str = "WAV", subtype: str = "PCM_16") -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=format, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="session")
def clip():
    """(int16 samples, rate, WAV bytes): 3.2 s at 16 kHz."""
    samples = speechlike(3.2, 16000)
    return samples, 16000, wav_bytes(samples, 16000)
