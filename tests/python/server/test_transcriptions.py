"""POST /v1/audio/transcriptions through the official openai client: the text is Transcriber's."""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import speechlike, wav_bytes


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model(client):
    return client.models.list().data[0].id


@pytest.fixture(scope="module")
def expected(transcriber, clip, tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    path.write_bytes(clip[2])
    result = transcriber.transcribe(path)
    assert result.text.strip() and len(result.words) >= 3, "the tiny model must say something for these tests to bite"
    return result


def test_json_is_the_transcribers_text(client, server, model, clip, expected):
    result = client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2], "audio/wav"))
    assert result.text == expected.text
    assert result.usage.seconds == pytest.approx(3.2)
    assert server.wait_idle()["sessions"] == {}


def test_verbose_json_has_the_transcribers_words_and_segments(client, model, clip, expected):
    result = client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2]),
                                                response_format="verbose_json",
                                                timestamp_granularities=["word", "segment"])  # fmt: skip
    assert result.text == expected.text
    assert [(w.word, w.start, w.end) for w in result.words] == \
        [(w.text, round(w.start_s, 3), round(w.end_s, 3)) for w in expected.words]  # fmt: skip
    assert "".join(s.text for s in result.segments) == expected.text
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and all(s.end > s.start for s in result.segments)
    assert result.duration == pytest.approx(3.2)


def test_stream_sends_deltas_then_done(client, model, clip, expected):
    events = list(client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2]), stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 2 and "".join(deltas) == expected.text
    assert events[-1].type == "transcript.text.done" and events[-1].text == expected.text


def test_text_srt_vtt(client, model, clip, expected):
    text = client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2]), response_format="text")
    assert text == expected.text + "\n"
    srt = client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2]), response_format="srt")
    vtt = client.audio.transcriptions.create(model=model, file=("clip.wav", clip[2]), response_format="vtt")
    cue = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)"
    assert re.match(r"1\n" + cue.replace("[,.]", ","), srt)
    assert vtt.startswith("WEBVTT\n\n") and re.search(cue.replace("[,.]", r"\."), vtt)
    words = "".join(expected.text.split())
    assert "".join(re.sub(cue, "", re.sub(r"^\d+$", "", srt, flags=re.MULTILINE)).split()) == words
    assert "".join(re.sub(cue, "", vtt.removeprefix("WEBVTT")).split()) == words


@pytest.mark.parametrize("rate,fmt,subtype", [(44100, "WAV", "PCM_16"), (24000, "FLAC", "PCM_16"),
                                              (48000, "OGG", "VORBIS")])  # fmt: skip
def test_any_rate_and_container_is_the_transcribers_text(client, model, transcriber, tmp_path, rate, fmt, subtype):
    data = wav_bytes(speechlike(2.0, rate, seed=3), rate, fmt, subtype)
    path = tmp_path / f"clip.{fmt.lower()}"
    path.write_bytes(data)
    result = client.audio.transcriptions.create(model=model, file=(path.name, data))
    assert result.text == transcriber.transcribe(path).text


def test_curl_form_without_model(server, clip, expected):
    # The form as curl sends it; model is optional here (there is one model to choose).
    r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("a.wav", clip[2])})
    assert r.status_code == 200 and r.json()["text"] == expected.text
