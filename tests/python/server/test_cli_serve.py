"""`voxtral-native serve` as a user runs it: its own process, models loaded once, key from the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command(tiny_stt_artifact, tiny_tts_artifact, transcriber):
    port = free_port()
    env = {**os.environ, "VOXTRAL_API_KEY": "from-env"}
    proc = subprocess.Popen([sys.executable, "-m", "voxtral_native", "serve", "--stt", str(tiny_stt_artifact),
                             "--tts", str(tiny_tts_artifact), "--port", str(port), "--max-speech-seconds", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        url, key = f"http://127.0.0.1:{port}", {"Authorization": "Bearer from-env"}
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/health", headers=key).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert httpx.get(url + "/health").status_code == 401
        ids = [m["id"] for m in httpx.get(url + "/v1/models", headers=key).json()["data"]]
        assert ids == [tiny_stt_artifact.name, tiny_tts_artifact.name]  # directory names, never server paths
        r = httpx.post(url + "/v1/audio/speech", headers=key, json={"input": "Hi.", "response_format": "wav"},
                       timeout=120)  # fmt: skip
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_serve_needs_a_model():
    r = subprocess.run(
        [sys.executable, "-m", "voxtral_native", "serve"], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 2 and "give --stt MODEL, --tts MODEL or both" in r.stderr
