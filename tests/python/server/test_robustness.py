"""Failure and load: concurrent clients, clients that vanish or stall, oversize and malformed
input, keys, capacity. None may crash the server, leak a session or return a traceback."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from voxtral_native.server.encoding import pcm16

from .conftest import SPEECH_SECONDS, speechlike, wav_bytes
from .test_realtime import Plain, b64, chunks


def openai_error(r: httpx.Response, status: int, param=None) -> dict:
    """The body of an error response, checked to be OpenAI's shape with no traceback in it."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert "Traceback" not in r.text and body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]


def frames(synthesizer, seconds=SPEECH_SECONDS) -> int:
    return int(seconds * synthesizer.sample_rate / synthesizer.samples_per_frame)


def test_eight_clients_at_once(server, transcriber, synthesizer):
    clips = [speechlike(1.6, 16000, seed=20 + i) for i in range(4)]
    texts = [f"Client number {i} speaks." for i in range(4)]

    def transcribe(i):
        r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(clips[i], 16000))},
                       timeout=120)  # fmt: skip
        return r.json()["text"]

    def speak(i):
        r = httpx.post(server.url + "/v1/audio/speech", json={"input": texts[i], "response_format": "pcm", "seed": i},
                       timeout=120)  # fmt: skip
        return r.content

    with ThreadPoolExecutor(8) as pool:
        heard = [pool.submit(transcribe, i) for i in range(4)]
        spoken = [pool.submit(speak, i) for i in range(4)]
        heard, spoken = [f.result() for f in heard], [f.result() for f in spoken]
    assert heard == [transcriber.transcribe(c, sample_rate=16000).text for c in clips]
    assert spoken == [pcm16(synthesizer.synthesize(t, seed=i, max_frames=frames(synthesizer)))
                      for i, t in enumerate(texts)]  # fmt: skip
    assert server.wait_idle()["sessions"] == {}


def _drop(sock: socket.socket) -> None:
    """Closes a socket at once with a reset, as a killed process's socket goes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def _raw_request(port: int, method: str, path: str, body: bytes, headers: dict | None = None,
                 rcvbuf: int | None = None) -> socket.socket:  # fmt: skip
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    head = {"Host": "x", "Content-Length": str(len(body)), **(headers or {})}
    sock.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode()
                 + b"\r\n" + body)  # fmt: skip
    return sock


def test_clients_killed_mid_stream_free_their_sessions(make_server, transcriber, synthesizer):
    live = make_server(max_speech_seconds=600.0)
    speech = json.dumps({"input": "A long answer.", "response_format": "pcm"}).encode()
    for _ in range(3):  # speech, read a little, then gone
        sock = _raw_request(live.port, "POST", "/v1/audio/speech", speech, {"Content-Type": "application/json"})
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert live.budget["sessions"] == {"tts": 1}
        _drop(sock)
        assert live.wait_idle(10)["sessions"] == {}, "a killed speech client kept its session"
    # a realtime stream, mid-item, gone without a close frame
    ws = Plain(live.ws_url)
    ws.recv()
    ws.send({"type": "input_audio_buffer.append", "audio": b64(speechlike(1.0, 24000))})
    deadline = time.monotonic() + 10
    while live.budget["sessions"] != {"stt": 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.budget["sessions"] == {"stt": 1}
    _drop(ws.ws.socket)
    assert live.wait_idle(10)["sessions"] == {}, "a killed realtime client kept its session"
    # a transcription upload, gone before its answer (the file is long enough to be mid-decode)
    big = wav_bytes(speechlike(120.0, 16000), 16000)
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + big + b"\r\n--b--\r\n"
    sock = _raw_request(live.port, "POST", "/v1/audio/transcriptions", body,
                        {"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    deadline = time.monotonic() + 10
    while live.budget["sessions"] != {"stt": 1} and time.monotonic() < deadline:
        time.sleep(0.005)
    _drop(sock)
    assert live.wait_idle(10)["memory_in_use_bytes"] == 0
    # and the server is as good as new
    clip = speechlike(1.6, 16000, seed=30)
    r = httpx.post(live.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(clip, 16000))}, timeout=60)
    assert r.json()["text"] == transcriber.transcribe(clip, sample_rate=16000).text


def test_slow_clients(make_server, synthesizer, caplog):
    live = make_server(idle_timeout_s=1.0, max_speech_seconds=600.0)
    # A reader that never reads: the server stops waiting after the idle timeout and frees the session.
    sock = _raw_request(live.port, "POST", "/v1/audio/speech", json.dumps({"input": "Never read.",
                        "response_format": "pcm"}).encode(), {"Content-Type": "application/json"}, rcvbuf=4096)  # fmt: skip
    time.sleep(0.5)
    assert live.budget["sessions"] == {"tts": 1}
    assert live.wait_idle(15)["sessions"] == {}, "a client that never reads kept its session"
    sock.close()
    # The connection is dropped mid-response on purpose (a truncated but well-ended response
    # would pass for complete audio); uvicorn logs that as an error, which is expected here.
    messages = [r.getMessage() for r in caplog.records]
    assert any("read nothing for 1 s; response abandoned" in m for m in messages), messages
    caplog.clear()
    # An upload that stalls half way gets 408.
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 100000\r\n\r\n--b\r\n")  # fmt: skip
    sock.settimeout(10)
    answer = b""
    while b"}}" not in answer and (piece := sock.recv(65536)):  # the head and the body may come apart
        answer += piece
    assert answer.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in answer
    sock.close()
    # A slow but steady reader gets every sample (backpressure, not loss); others are served meanwhile.
    live2 = make_server(max_speech_seconds=8.0)
    got = bytearray()

    def slow_read():
        with httpx.stream("POST", live2.url + "/v1/audio/speech", json={"input": "Slowly.", "response_format": "pcm"},
                          timeout=60) as r:  # fmt: skip
            for piece in r.iter_raw(16384):
                got.extend(piece)
                time.sleep(0.01)

    reader = threading.Thread(target=slow_read)
    reader.start()
    fast = httpx.post(live2.url + "/v1/audio/speech", json={"input": "Quick.", "response_format": "pcm"}, timeout=60)
    assert fast.content == pcm16(synthesizer.synthesize("Quick.", seed=42, max_frames=frames(synthesizer, 8.0)))
    reader.join(60)
    assert bytes(got) == pcm16(synthesizer.synthesize("Slowly.", seed=42, max_frames=frames(synthesizer, 8.0)))


def test_oversize_bodies_get_413(make_server):
    live = make_server(max_upload_bytes=100_000, max_json_bytes=2_000)
    big = wav_bytes(speechlike(5.0, 16000), 16000)  # 160 kB
    error = openai_error(httpx.post(live.url + "/v1/audio/transcriptions", files={"file": ("a.wav", big)}), 413)
    assert error["code"] == "request_too_large"

    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + big + b"\r\n--b--\r\n"

    def chunked():  # no Content-Length: counted as it arrives
        for i in range(0, len(form), 8192):
            yield form[i : i + 8192]

    r = httpx.post(live.url + "/v1/audio/transcriptions", content=chunked(),
                   headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert openai_error(r, 413)["code"] == "request_too_large"
    openai_error(httpx.post(live.url + "/v1/audio/speech", json={"input": "x" * 5000}), 413)
    assert live.wait_idle()["sessions"] == {}


def test_api_key(make_server, transcriber):
    from openai import AuthenticationError, OpenAI
    from websockets.exceptions import InvalidStatus

    live = make_server(api_key="sekrit")
    clip = wav_bytes(speechlike(1.0, 16000), 16000)
    assert openai_error(httpx.get(live.url + "/v1/models"), 401)["code"] == "missing_api_key"
    for path in ("/v1/audio/voices", "/health"):
        openai_error(httpx.get(live.url + path, headers={"Authorization": "Bearer nope"}), 401)
    openai_error(httpx.post(live.url + "/v1/audio/speech", json={"input": "hi"}), 401)
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0).audio.transcriptions.create(
            model="x", file=("a.wav", clip)
        )
    good = OpenAI(base_url=live.url + "/v1", api_key="sekrit", max_retries=0)
    assert good.audio.transcriptions.create(model=live.app.state.served.stt_id, file=("a.wav", clip)).text == \
        transcriber.transcribe(speechlike(1.0, 16000), sample_rate=16000).text  # fmt: skip
    for kwargs in ({}, {"additional_headers": {"Authorization": "Bearer nope"}},
                   {"subprotocols": ["realtime", "openai-insecure-api-key.nope"]}):  # fmt: skip
        with pytest.raises(InvalidStatus) as refused:
            Plain(live.ws_url, **kwargs)
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
    for kwargs in ({"additional_headers": {"Authorization": "Bearer sekrit"}},
                   {"subprotocols": ["realtime", "openai-insecure-api-key.sekrit"]}):  # fmt: skip
        ws = Plain(live.ws_url, **kwargs)
        assert ws.recv()["type"] == "session.created"
        ws.close()
    assert httpx.get(live.url + "/").status_code == 200  # the page itself holds nothing


def test_malformed_events_and_binary_garbage_on_the_socket(server, transcriber):
    ws = Plain(server.ws_url)
    ws.recv()
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"type": 5}),
        json.dumps({"type": "response.create"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": "!!not base64!!"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}),
        json.dumps({"type": "input_audio_buffer.append"}),
        json.dumps({"type": "session.update", "session": 3}),
    ]
    codes = []
    for text in bad:
        ws.ws.send(text)
        codes.append(ws.recv()["error"]["code"])
    rng = np.random.default_rng(0)
    for _ in range(3):
        ws.ws.send(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())  # binary frames
        codes.append(ws.recv()["error"]["code"])
    assert codes == ["invalid_json", "invalid_event", "invalid_event", "unknown_event"] + ["invalid_value"] * 4 + \
        ["invalid_frame"] * 3  # fmt: skip
    clip = speechlike(1.6, 24000, seed=11)  # the same socket still transcribes
    for piece in chunks(clip, 24000):
        ws.send({"type": "input_audio_buffer.append", "audio": b64(piece)})
    ws.send({"type": "input_audio_buffer.commit"})
    assert ws.until("conversation.item.input_audio_transcription.completed")[-1]["transcript"] == \
        transcriber.transcribe(clip, sample_rate=24000).text  # fmt: skip
    ws.close()
    assert server.wait_idle()["sessions"] == {}


def test_websocket_message_limit_and_idle_timeout(make_server):
    from websockets.exceptions import ConnectionClosed

    live = make_server(idle_timeout_s=1.0, ws_max_message_bytes=64_000)
    ws = Plain(live.ws_url)
    ws.recv()
    ws.send({"type": "input_audio_buffer.append", "audio": "A" * 100_000})
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(10)
    assert closed.value.rcvd.code == 1009  # message too big
    ws = Plain(live.ws_url)
    ws.recv()
    error = ws.recv(10)  # nothing sent for a second
    assert error["type"] == "error" and error["error"]["code"] == "idle_timeout"
    with pytest.raises(ConnectionClosed):
        ws.recv(10)
    assert live.wait_idle()["sessions"] == {}


@pytest.mark.parametrize("route,payload,param", [
    ("speech", {"input": "hi", "response_format": "aac"}, "response_format"),
    ("speech", {"input": "hi", "voice": "alloy"}, "voice"),
    ("speech", {"input": "hi", "voice": "../../etc/passwd"}, "voice"),
    ("speech", {"input": "   "}, "input"),
    ("speech", {"input": ""}, "input"),
    ("speech", {"voice": "x"}, "input"),
    ("speech", {"input": "hi", "speed": 2.0}, "speed"),
    ("speech", {"input": "hi", "unknown": 1}, "unknown"),
    ("speech", {"input": "hi", "model": "tts-1"}, "model"),
    ("speech", {"input": "hi", "seed": -1}, "seed"),
    ("transcriptions", {"file": ("a.wav", b"RIFF garbage that is no audio")}, "file"),
    ("transcriptions", {"file": ("a.webm", b"\x1aE\xdf\xa3" + bytes(2000))}, "file"),
    ("transcriptions", {"file": ("a.wav", wav_bytes(np.zeros(0, np.int16), 16000))}, "file"),
    ("transcriptions", {"response_format": "diarized_json"}, "response_format"),
    ("transcriptions", {"model": "whisper-1"}, "model"),
    ("transcriptions", {"prompt": "hello"}, "prompt"),
    ("transcriptions", {"timestamp_granularities[]": "word"}, "timestamp_granularities"),
    ("transcriptions", {}, "file"),
])  # fmt: skip
def test_bad_input_is_a_4xx_in_openais_shape(server, route, payload, param):
    url = server.url + "/v1/audio/" + route
    if route == "speech":
        r = httpx.post(url, json=payload)
    else:
        files = {"file": payload.pop("file")} if "file" in payload else None
        if files is None and payload:
            files = {"file": ("a.wav", wav_bytes(speechlike(0.5, 16000), 16000))}
        r = httpx.post(url, files=files, data=payload)
    error = openai_error(r, 404 if param == "model" else 400, param)
    assert error["type"] in ("invalid_request_error", "not_found_error")
    assert server.wait_idle()["sessions"] == {}


def test_malformed_bodies(server):
    r = httpx.post(server.url + "/v1/audio/speech", content=b"{oops", headers={"Content-Type": "application/json"})
    assert "JSON" in openai_error(r, 400)["message"]
    r = httpx.post(server.url + "/v1/audio/transcriptions", content=b"--x\r\nnot a form",
                   headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    openai_error(r, 400)
    openai_error(httpx.get(server.url + "/v1/nothing"), 404)
    openai_error(httpx.delete(server.url + "/v1/models"), 405)


def test_the_default_budget_leaves_out_the_programs_the_runners_keep(monkeypatch, transcriber, synthesizer):
    from voxtral_native.server import app as server_app
    from voxtral_native.server.config import ServerConfig

    monkeypatch.setattr(server_app, "available_memory_bytes", lambda: 10 * 2**30)
    state = server_app.create_app(ServerConfig(), transcriber, synthesizer).state.served
    idle = transcriber.session_memory_bytes + synthesizer.session_memory_bytes
    assert idle > 0
    assert state.budget.budget_bytes == int(10 * 2**30 * server_app.BUDGET_FRACTION) - idle


def test_past_the_memory_budget_is_503_not_an_oom(make_server, transcriber, synthesizer):
    live = make_server(memory_budget_bytes=transcriber.session_memory_bytes + 1024)
    ws = Plain(live.ws_url)  # holds the one session the budget allows
    ws.recv()
    ws.send({"type": "input_audio_buffer.append", "audio": b64(speechlike(0.5, 24000))})
    deadline = time.monotonic() + 10
    while live.budget["sessions"] != {"stt": 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    clip = wav_bytes(speechlike(0.5, 16000), 16000)
    r = httpx.post(live.url + "/v1/audio/transcriptions", files={"file": ("a.wav", clip)})
    assert openai_error(r, 503)["code"] == "server_at_capacity" and r.headers["retry-after"] == "1"
    openai_error(httpx.post(live.url + "/v1/audio/speech", json={"input": "hi"}), 503)
    other = Plain(live.ws_url)  # a second live stream is refused with an error event
    other.recv()
    other.send({"type": "input_audio_buffer.append", "audio": b64(speechlike(0.5, 24000))})
    assert other.until("error")[-1]["error"]["code"] == "server_at_capacity"
    other.close()
    ws.close()
    live.wait_idle()
    assert httpx.post(live.url + "/v1/audio/transcriptions", files={"file": ("a.wav", clip)}).status_code == 200


def test_cors_only_when_enabled(server, make_server):
    preflight = {"Origin": "http://example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    r = httpx.options(server.url + "/v1/audio/speech", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    assert (
        "access-control-allow-origin"
        not in httpx.get(server.url + "/v1/models", headers={"Origin": "http://x"}).headers
    )
    live = make_server(cors_origins=["http://example.org"], api_key="k")
    r = httpx.options(live.url + "/v1/audio/speech", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://example.org"
    r = httpx.options(live.url + "/v1/audio/speech", headers={**preflight, "Origin": "http://evil.example"})
    assert r.headers.get("access-control-allow-origin") != "http://evil.example"
