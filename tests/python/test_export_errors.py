"""Broken checkpoints reach the user of `voxtral-native export` as one clear line naming
the file, never a third-party traceback (safetensors, json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


def _export(checkpoint, out, kind="stt"):
    return subprocess.run(
        [sys.executable, "-m", "voxtral_native", "export", kind, "--checkpoint", str(checkpoint), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _copy(tiny_stt_dir, tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_stt_dir, broken)
    return broken


@pytest.mark.parametrize("kind", ["stt", "tts"])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_broken_safetensors_file_is_named(request, tmp_path, kind, damage):
    ckpt = _copy(request.getfixturevalue(f"tiny_{kind}_dir"), tmp_path)
    weights = ckpt / "consolidated.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x07not safetensors" * 64, "empty": b""}[damage])
    r = _export(ckpt, tmp_path / "out", kind)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "SafetensorError" not in r.stderr
    assert f"{weights} is not a readable safetensors file" in r.stderr
    assert not (tmp_path / "out" / "model.pte").exists()


@pytest.mark.parametrize("damage", ["not json", "no audio block", "no delay"])
def test_a_tokenizer_without_the_stream_schedule_is_refused(tiny_stt_dir, tmp_path, damage):
    """tekken.json's audio settings are required: no silent 480 ms / 32-token fallback."""
    ckpt = _copy(tiny_stt_dir, tmp_path)
    tekken_path = ckpt / "tekken.json"
    tekken = json.loads(tekken_path.read_text())
    if damage == "not json":
        tekken_path.write_text("{ this is not json")
    else:
        if damage == "no audio block":
            del tekken["audio"]
        else:
            del tekken["audio"]["transcription_delay_ms"]
        tekken_path.write_text(json.dumps(tekken))
    r = _export(ckpt, tmp_path / "out")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    expected = {"not json": "is not valid JSON", "no audio block": "has no 'audio' block",
                "no delay": "lacks transcription_delay_ms"}[damage]  # fmt: skip
    assert str(tekken_path) in r.stderr and expected in r.stderr


@pytest.mark.parametrize("damage", ["params not json", "voice file garbage", "params of the other model"])
def test_a_broken_tts_checkpoint_is_named(tiny_tts_dir, tiny_stt_dir, tmp_path, damage):
    ckpt = _copy(tiny_tts_dir, tmp_path)
    if damage == "params not json":
        named = ckpt / "params.json"
        named.write_text("{ not json")
    elif damage == "voice file garbage":
        named = ckpt / "voice_embedding" / "casual_male.pt"
        named.write_bytes(b"PK\x03\x04 broken zip" * 10)
    else:
        named = ckpt / "params.json"
        shutil.copyfile(tiny_stt_dir / "params.json", named)
    r = _export(ckpt, tmp_path / "out", "tts")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and str(named) in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "out" / "model.pte").exists()
