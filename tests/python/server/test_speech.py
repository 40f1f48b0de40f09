"""POST /v1/audio/speech through the official openai client: the audio is Synthesizer's, same seed."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest

from voxtral_native.server.encoding import pcm16

from .conftest import SPEECH_SECONDS

TEXT = "Hello from the server."


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def tts_model(server):
    return server.app.state.served.tts_id


def reference(synthesizer, text=TEXT, voice=None, seed=7, seconds=SPEECH_SECONDS) -> np.ndarray:
    frames = int(seconds * synthesizer.sample_rate / synthesizer.samples_per_frame)
    return synthesizer.synthesize(text, voice=voice, seed=seed, max_frames=frames)


def speak(client, model, **kwargs) -> tuple[bytes, list[bytes], dict]:
    with client.audio.speech.with_streaming_response.create(model=model, input=kwargs.pop("input", TEXT),
                                                            **kwargs) as response:  # fmt: skip
        pieces = list(response.iter_bytes())
        return b"".join(pieces), pieces, dict(response.headers)


def test_pcm_streams_the_synthesizers_samples(client, server, synthesizer, tts_model):
    voice = synthesizer.voices[-1]
    audio, _, headers = speak(client, tts_model, voice=voice, response_format="pcm", extra_body={"seed": 7})
    expected = reference(synthesizer, voice=voice)
    assert audio == pcm16(expected)
    assert headers.get("transfer-encoding") == "chunked" and headers["content-type"] == "audio/pcm"
    assert server.wait_idle()["sessions"] == {}


def test_other_seed_other_audio_default_seed_is_configs(client, synthesizer, tts_model):
    voice = synthesizer.default_voice
    a, _, _ = speak(client, tts_model, voice=voice, response_format="pcm", extra_body={"seed": 8})
    b, _, _ = speak(client, tts_model, voice=voice, response_format="pcm")
    assert a == pcm16(reference(synthesizer, seed=8))
    assert b == pcm16(reference(synthesizer, seed=42)) and a != b


def test_wav_is_a_streamable_header_and_the_same_samples(client, synthesizer, tts_model):
    import soundfile

    voice = synthesizer.default_voice
    audio, _, headers = speak(client, tts_model, voice=voice, response_format="wav", extra_body={"seed": 7})
    assert headers["content-type"] == "audio/wav" and audio[:4] == b"RIFF" and audio[8:16] == b"WAVEfmt "
    assert audio[44:] == pcm16(reference(synthesizer))
    with soundfile.SoundFile(io.BytesIO(audio)) as f:  # a reader takes the unknown length as "to the end"
        assert (f.samplerate, f.channels, f.subtype) == (24000, 1, "PCM_16")
        decoded = f.read(dtype="int16")
    assert np.array_equal(decoded, np.frombuffer(pcm16(reference(synthesizer)), "<i2"))


@pytest.mark.parametrize("fmt,container", [("flac", "FLAC"), ("mp3", "MP3"), ("opus", "OGG")])
def test_compressed_formats_decode(client, synthesizer, tts_model, fmt, container):
    import soundfile

    audio, _, _ = speak(client, tts_model, voice=synthesizer.default_voice, response_format=fmt, extra_body={"seed": 7})
    data, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    info = soundfile.info(io.BytesIO(audio))
    expected = reference(synthesizer)
    assert rate == 24000 and info.format == container
    if fmt == "flac":  # lossless at 16 bits
        assert len(data) == len(expected) and np.abs(data - np.clip(expected, -1, 1)).max() <= 1.5 / 32768
    else:  # lossy: the length, give or take the codec's padding
        assert abs(len(data) - len(expected)) <= 2400


def test_audio_streams_while_it_is_synthesized(make_server, synthesizer):
    # 40 s of audio: chunks of 0.4 s, then 2 s each; the first arrives long before the last
    # (the tiny model makes 40 s in about a second, so fewer would be a race with the first).
    live = make_server(max_speech_seconds=40.0)
    start = time.monotonic()
    arrivals = []
    with httpx.stream("POST", live.url + "/v1/audio/speech", json={"input": TEXT, "response_format": "pcm"},
                      timeout=120) as r:  # fmt: skip
        assert r.status_code == 200
        for piece in r.iter_raw():
            arrivals.append((time.monotonic() - start, len(piece)))
    first_chunk = int(0.4 * 24000) * 2
    assert arrivals[0][1] <= first_chunk, "the first 0.4 s went out alone"
    assert sum(n for _, n in arrivals) == int(40.0 * 12.5) * 1920 * 2
    assert arrivals[0][0] < 0.5 * arrivals[-1][0], arrivals


def test_voices_and_models(client, server, synthesizer):
    r = httpx.get(server.url + "/v1/audio/voices").json()
    assert [v["id"] for v in r["data"]] == synthesizer.voices and r["default"] == synthesizer.default_voice
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {server.app.state.served.stt_id, server.app.state.served.tts_id}
