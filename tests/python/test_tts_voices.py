"""Voices of the TTS checkpoint as the real files come: any top folder inside the .pt zip,
raw .bin in bf16 or float32, N per voice checked against tekken.json; bad files refused
with an error naming them (and a pickle that would run code never runs)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from voxtral_native.errors import InvalidModelError, NotFoundError
from voxtral_native.export.voices import VOICES_FILE, VoiceError, read_voice, read_voices, write_voices


@pytest.fixture()
def checkpoint(tiny_tts_dir, tmp_path) -> Path:
    """A copy of the tiny TTS checkpoint's tekken.json and voices, free to break."""
    out = tmp_path / "ckpt"
    out.mkdir()
    shutil.copy(tiny_tts_dir / "tekken.json", out / "tekken.json")
    shutil.copytree(tiny_tts_dir / "voice_embedding", out / "voice_embedding")
    return out


def dim_of(checkpoint: Path) -> int:
    return torch.load(next((checkpoint / "voice_embedding").glob("*.pt")), weights_only=True).shape[1]


def tekken_rows(checkpoint: Path) -> dict[str, int]:
    return json.loads((checkpoint / "tekken.json").read_text())["audio"]["voice_num_audio_tokens"]


def with_top_folder(src: Path, dst: Path, folder: str) -> Path:
    """`src` rewritten with its zip entries under `folder`/ (as other tools save them)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(f"{folder}/{info.filename.split('/', 1)[1]}", zin.read(info.filename))
    return dst


def test_every_voice_is_read_with_its_rows(checkpoint):
    dim = dim_of(checkpoint)
    voices = read_voices(checkpoint, dim)
    rows = tekken_rows(checkpoint)
    assert sorted(voices) == sorted(rows) and len(voices) == 20
    for name, voice in voices.items():
        reference = torch.load(checkpoint / "voice_embedding" / f"{name}.pt", weights_only=True)
        assert reference.dtype == torch.bfloat16
        assert voice.dtype == torch.float32 and voice.shape == (rows[name], dim)
        assert torch.equal(voice, reference.float())  # bf16 -> f32 is exact
    assert len({v.shape[0] for v in voices.values()}) == 20  # N differs per voice


@pytest.mark.parametrize("folder", ["voice_embed", "archive", "casual_male"])
def test_any_top_folder_in_the_zip(checkpoint, folder):
    src = checkpoint / "voice_embedding" / "casual_male.pt"
    moved = with_top_folder(src, checkpoint / "moved.pt", folder)
    assert torch.equal(read_voice(moved, dim_of(checkpoint)), read_voice(src, dim_of(checkpoint)))


def test_raw_bin_in_bf16_and_float32(checkpoint):
    dim = dim_of(checkpoint)
    voice_dir = checkpoint / "voice_embedding"
    reference = torch.load(voice_dir / "casual_male.pt", weights_only=True)
    n = reference.shape[0]
    (voice_dir / "casual_male.pt").unlink()
    reference.view(torch.int16).numpy().astype("<i2").tofile(voice_dir / "casual_male.bin")
    assert torch.equal(read_voices(checkpoint, dim)["casual_male"], reference.float())
    reference.float().numpy().astype("<f4").tofile(voice_dir / "casual_male.bin")
    assert torch.equal(read_voices(checkpoint, dim)["casual_male"], reference.float())
    # Without the expected rows, an even N in bf16 is as long as N / 2 rows in float32.
    even = voice_dir / "even.bin"
    np.zeros((2 * (n // 2), dim), "<u2").tofile(even)
    with pytest.raises(VoiceError, match="even.bin.*unambiguously"):
        read_voice(even, dim)
    assert read_voice(even, dim, rows=2 * (n // 2)).shape[0] == 2 * (n // 2)


def test_rows_must_match_tekken(checkpoint):
    rows = tekken_rows(checkpoint)
    rows["casual_male"] += 1
    tekken = json.loads((checkpoint / "tekken.json").read_text())
    tekken["audio"]["voice_num_audio_tokens"] = rows
    (checkpoint / "tekken.json").write_text(json.dumps(tekken))
    with pytest.raises(VoiceError, match=rf"casual_male.pt: {rows['casual_male'] - 1} rows, but tekken.json"):
        read_voices(checkpoint, dim_of(checkpoint))


def test_a_voice_listed_in_tekken_without_a_file(checkpoint):
    (checkpoint / "voice_embedding" / "neutral_female.pt").unlink()
    with pytest.raises(NotFoundError, match="lists voices with no file: neutral_female"):
        read_voices(checkpoint, dim_of(checkpoint))


class _RunsCode:
    def __reduce__(self):  # what a malicious .pt would do on a plain torch.load
        import os

        return os.system, (f"touch {MARKER}",)


MARKER = Path("/tmp/voxtral-voice-pickle-ran")


def test_a_pickle_that_runs_code_is_refused_without_running(checkpoint):
    MARKER.unlink(missing_ok=True)
    evil = checkpoint / "voice_embedding" / "evil.pt"
    torch.save({"x": _RunsCode()}, evil)
    with pytest.raises(VoiceError, match="evil.pt is not a readable voice file"):
        read_voice(evil, dim_of(checkpoint))
    assert not MARKER.exists()


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty"])
def test_a_damaged_voice_file_is_named(checkpoint, damage):
    path = checkpoint / "voice_embedding" / "casual_male.pt"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not a zip": b"hello" * 100, "empty": b""}[damage])
    with pytest.raises(VoiceError, match="casual_male.pt is not a readable voice file"):
        read_voices(checkpoint, dim_of(checkpoint))


def test_wrong_width_and_wrong_contents(checkpoint):
    dim = dim_of(checkpoint)
    path = checkpoint / "voice_embedding" / "x.pt"
    torch.save(torch.zeros(5, dim + 1, dtype=torch.bfloat16), path)
    with pytest.raises(VoiceError, match=rf"is \[N, {dim}\].*got \[5, {dim + 1}\]"):
        read_voice(path, dim)
    torch.save([1, 2, 3], path)
    with pytest.raises(VoiceError, match="holds a list, not one tensor"):
        read_voice(path, dim)
    torch.save(torch.full((5, dim), float("nan")), path)
    with pytest.raises(VoiceError, match="NaN"):
        read_voice(path, dim)


def test_no_voice_folder(tmp_path):
    (tmp_path / "tekken.json").write_text("{}")
    with pytest.raises(NotFoundError, match="has no voice_embedding/ folder"):
        read_voices(tmp_path, 64)
    bad = tmp_path / "voice_embedding"
    bad.mkdir()
    (tmp_path / "tekken.json").write_text("{not json")
    with pytest.raises(InvalidModelError, match="tekken.json is not valid JSON"):
        read_voices(tmp_path, 64)


def test_the_raw_voices_file_round_trips(checkpoint, tmp_path):
    voices = read_voices(checkpoint, dim_of(checkpoint))
    index = write_voices(tmp_path, voices)
    raw = np.fromfile(tmp_path / VOICES_FILE, "<f4").reshape(-1, index.dim)
    assert raw.shape[0] == sum(v.shape[0] for v in voices.values())
    for name, (first, rows) in index.voices.items():
        assert np.array_equal(raw[first : first + rows], voices[name].numpy())
    manifest = index.to_manifest()
    assert manifest["file"] == VOICES_FILE and manifest["voices"]["casual_male"]["rows"] == voices["casual_male"].shape[0]
