"""The artifact index (manifest.json) as both readers see it: Python's read_artifact and
libvoxtral's (through SttRunner.load). Every malformed directory gets the same class of
error from both, naming what it is and what was expected. No export needed: the readers
check the manifest before opening the program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import voxtral_native
from voxtral_native.artifact import FORMAT_VERSION, read_artifact
from voxtral_native.errors import InvalidModelError, NotFoundError, UnsupportedVersionError

GOOD = {"format_version": FORMAT_VERSION, "kind": "stt", "backend": "xnnpack",
        "files": {"program": "model.pte", "tokenizer": "tekken.json"}}  # fmt: skip


def python_reader(path: Path):
    return read_artifact(path, "stt")


def native_reader(path: Path):
    return voxtral_native.native().SttRunner.load(str(path))


READERS = pytest.mark.parametrize("reader", [python_reader, native_reader], ids=["python", "native"])


def artifact_dir(tmp_path: Path, manifest: dict | str | None, files=("model.pte", "tekken.json")) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    for name in files:
        (d / name).write_bytes(b"")
    if manifest is not None:
        (d / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return d


CASES = {
    "no manifest": (None, NotFoundError, "has no manifest.json: not a model exported by voxtral-native"),
    "not JSON": ("{\"kind\": ", InvalidModelError, "manifest.json"),
    "older layout": ({"model": "x", "program": "model.pte"}, UnsupportedVersionError, "older voxtral-native"),
    "newer version": ({**GOOD, "format_version": FORMAT_VERSION + 1}, UnsupportedVersionError,
                      f"artifact format version {FORMAT_VERSION + 1}; this"),
    "text-to-speech": ({**GOOD, "kind": "tts"}, InvalidModelError,
                       "is a text-to-speech model (kind 'tts'); expected a speech-to-text model (kind 'stt')"),
    "other backend": ({**GOOD, "backend": "cuda"}, InvalidModelError, "exported for cuda; this build"),
    "file outside": ({**GOOD, "files": {"program": "../model.pte"}}, InvalidModelError,
                     "files.program must be a file name inside the directory"),
    "files not an object": ({**GOOD, "files": ["model.pte"]}, InvalidModelError, "'files' must"),
}  # fmt: skip


@READERS
@pytest.mark.parametrize("case", list(CASES))
def test_malformed_artifact_gets_a_clear_error(reader, case, tmp_path):
    manifest, error, message = CASES[case]
    d = artifact_dir(tmp_path, manifest)
    with pytest.raises(error) as e:
        reader(d)
    assert message in str(e.value), str(e.value)


@READERS
def test_missing_listed_file_is_named(reader, tmp_path):
    d = artifact_dir(tmp_path, GOOD, files=("model.pte",))
    with pytest.raises(NotFoundError, match="lists tokenizer file 'tekken.json' but it is missing"):
        reader(d)


@READERS
def test_missing_directory(reader, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        reader(tmp_path / "nowhere")


def test_python_reader_returns_the_index(tmp_path):
    d = artifact_dir(tmp_path, {**GOOD, "options": {"dtype": "fp32"}})
    a = read_artifact(d)
    assert (a.kind, a.backend, a.format_version) == ("stt", "xnnpack", FORMAT_VERSION)
    assert a.file("program") == d / "model.pte"
    assert a.manifest["options"] == {"dtype": "fp32"}
    with pytest.raises(InvalidModelError, match="lists no voices file"):
        a.file("voices")


def test_transcriber_refuses_a_text_to_speech_checkpoint(tiny_tts_dir):
    from voxtral_native.transcriber import Transcriber

    with pytest.raises(InvalidModelError, match="is a text-to-speech checkpoint; expected a speech-to-text one"):
        Transcriber(tiny_tts_dir, progress=lambda _: None)


def test_transcriber_refuses_a_text_to_speech_artifact(tmp_path):
    from voxtral_native.transcriber import Transcriber

    d = artifact_dir(tmp_path, {**GOOD, "kind": "tts"})
    with pytest.raises(InvalidModelError, match="is a text-to-speech model"):
        Transcriber(d, progress=lambda _: None)


def test_cache_entries_are_per_kind_and_format(tiny_stt_dir, tmp_path, monkeypatch):
    from voxtral_native import models

    monkeypatch.setenv("VOXTRAL_NATIVE_CACHE", str(tmp_path))
    key = models._cache_key(tiny_stt_dir, {})
    monkeypatch.setattr(models, "FORMAT_VERSION", FORMAT_VERSION + 1)
    assert models._cache_key(tiny_stt_dir, {}) != key  # a new layout never reuses an old entry
    assert models.checkpoint_kind(tiny_stt_dir) == "stt"
