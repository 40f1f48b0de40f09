"""WS /v1/realtime: OpenAI's realtime client (and a plain websockets client speaking the same
events) transcribe live; the text is Transcriber's on the same samples."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from .conftest import speechlike


def b64(samples: np.ndarray) -> str:
    return base64.b64encode(samples.astype("<i2").tobytes()).decode()


def chunks(samples: np.ndarray, rate: int, ms: int = 100):
    step = rate * ms // 1000
    return [samples[i : i + step] for i in range(0, len(samples), step)]


class Plain:
    """A websockets client with the event helpers the tests need."""

    def __init__(self, url: str, **kwargs):
        from websockets.sync.client import connect

        self.ws = connect(url, open_timeout=10, **kwargs).__enter__()  # entered: websockets warns otherwise

    def send(self, event: dict) -> None:
        self.ws.send(json.dumps(event))

    def recv(self, timeout: float = 60) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def until(self, kind: str, timeout: float = 60) -> list[dict]:
        """Every event up to and including the first of type `kind`."""
        events = []
        while not events or events[-1]["type"] != kind:
            events.append(self.recv(timeout))
        return events

    def close(self) -> None:
        self.ws.__exit__(None, None, None)


def test_openai_realtime_client_transcribes_live(server, transcriber):
    from openai import OpenAI

    samples = speechlike(3.2, 16000, seed=5)
    expected = transcriber.transcribe(samples, sample_rate=16000).text
    assert expected.strip()
    client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    stt_id = server.app.state.served.stt_id
    with client.realtime.connect(model=stt_id) as conn:
        assert conn.recv().type == "session.created"
        conn.session.update(session={"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000}, "transcription": {"model": stt_id},
            "turn_detection": None}}})  # fmt: skip
        updated = conn.recv()
        assert updated.type == "session.updated" and updated.session.audio.input.format.rate == 16000
        for piece in chunks(samples, 16000):
            conn.input_audio_buffer.append(audio=b64(piece))
        live = []
        while not live:  # text arrives while the item is open, before any commit
            event = conn.recv()
            assert event.type == "conversation.item.input_audio_transcription.delta", event
            live.append(event.delta)
        conn.input_audio_buffer.commit()
        events = []
        while not events or events[-1].type != "conversation.item.input_audio_transcription.completed":
            events.append(conn.recv())
    kinds = [e.type for e in events]
    assert "input_audio_buffer.committed" in kinds
    deltas = live + [e.delta for e in events if e.type.endswith(".delta")]
    done = events[-1]
    assert "".join(deltas) == done.transcript == expected
    assert done.usage.seconds == pytest.approx(3.2)
    assert server.wait_idle()["sessions"] == {}


def test_default_rate_is_24k_and_items_follow_each_other(server, transcriber):
    first, second = speechlike(2.4, 24000, seed=6), speechlike(1.6, 24000, seed=7)
    ws = Plain(server.ws_url)
    created = ws.recv()
    assert created["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    transcripts, item_ids, previous = [], [], []
    for clip in (first, second):
        for piece in chunks(clip, 24000, ms=250):
            ws.send({"type": "input_audio_buffer.append", "audio": b64(piece)})
        ws.send({"type": "input_audio_buffer.commit"})
        events = ws.until("conversation.item.input_audio_transcription.completed")
        committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        item_ids.append(committed["item_id"])
        previous.append(committed["previous_item_id"])
        assert {e["item_id"] for e in events if "item_id" in e} == {committed["item_id"]}
        transcripts.append(events[-1]["transcript"])
    ws.close()
    # Each item is a fresh stream: the text of each clip alone.
    assert transcripts == [transcriber.transcribe(c, sample_rate=24000).text for c in (first, second)]
    assert previous == [None, item_ids[0]] and item_ids[0] != item_ids[1]
    assert server.wait_idle()["sessions"] == {}


def test_clear_drops_the_item(server, transcriber):
    ws = Plain(server.ws_url)
    ws.recv()
    ws.send({"type": "input_audio_buffer.append", "audio": b64(speechlike(1.0, 24000, seed=8))})
    ws.send({"type": "input_audio_buffer.clear"})
    ws.until("input_audio_buffer.cleared")
    assert server.wait_idle()["sessions"] == {}
    ws.send({"type": "input_audio_buffer.commit"})  # nothing left to commit
    assert ws.until("error")[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
    clip = speechlike(1.6, 24000, seed=9)
    ws.send({"type": "input_audio_buffer.append", "audio": b64(clip)})
    ws.send({"type": "input_audio_buffer.commit"})
    done = ws.until("conversation.item.input_audio_transcription.completed")[-1]
    assert done["transcript"] == transcriber.transcribe(clip, sample_rate=24000).text
    ws.close()


@pytest.mark.parametrize("session,param", [
    ({"type": "realtime"}, "session.type"),
    ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "session.audio.input.format.type"),
    ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 100}}}}, "session.audio.input.format.rate"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}, "session.audio.input.turn_detection"),
    ({"audio": {"input": {"transcription": {"model": "whisper-1"}}}}, "session.audio.input.transcription.model"),
    ({"voice": "alloy"}, "session"),
])  # fmt: skip
def test_bad_session_updates_are_error_events_and_change_nothing(server, session, param):
    ws = Plain(server.ws_url)
    ws.recv()
    ws.send({"type": "session.update", "event_id": "evt_1", "session": session})
    error = ws.recv()
    assert error["type"] == "error" and error["error"]["param"] == param and error["error"]["event_id"] == "evt_1"
    ws.send({"type": "session.update", "session": {}})
    assert ws.recv()["session"]["audio"]["input"]["format"]["rate"] == 24000
    ws.close()


def test_rate_cannot_change_mid_item(server):
    ws = Plain(server.ws_url)
    ws.recv()
    ws.send({"type": "input_audio_buffer.append", "audio": b64(speechlike(0.5, 24000))})
    ws.send(
        {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}
    )
    error = ws.until("error")[-1]["error"]
    assert error["param"] == "session.audio.input.format.rate" and "commit" in error["message"]
    ws.close()
    assert server.wait_idle()["sessions"] == {}
