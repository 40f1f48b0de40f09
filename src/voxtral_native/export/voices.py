"""The preset voices of a Voxtral-4B-TTS-2603 checkpoint, read and converted for the runtime.

A voice is N rows of LM embeddings [N, dim] that replace the prompt's N [AUDIO] tokens.
The released checkpoint keeps each in ``voice_embedding/<name>.pt``: a ``torch.save`` zip of
one bf16 tensor whose entries sit under a top folder that differs from file to file
(``voice_embed/``, ``<name>/``, ``archive/``). Ports also ship raw ``<name>.bin`` (bf16 or
float32, little-endian, no header). N differs per voice; tekken.json's
``audio.voice_num_audio_tokens`` lists it where present, and every voice is checked
against it.

``.pt`` files are read with ``torch.load(weights_only=True)``: PyTorch's restricted
unpickler, which builds tensors and plain containers and refuses any other object, so a
voice file cannot run code.

The artifact keeps every voice in one raw file the C++ side reads without a zip or pickle
reader: ``voices.f32``, float32 little-endian rows [sum N, dim], voice after voice in name
order; the manifest lists name -> (first row, rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxtral_native.errors import InvalidModelError, NotFoundError

VOICE_DIR = "voice_embedding"
VOICES_FILE = "voices.f32"


class VoiceError(InvalidModelError):
    """A voice file is unreadable or does not fit the model."""


@dataclass(frozen=True)
class VoiceIndex:
    """Where each voice's rows are in VOICES_FILE."""

    dim: int
    voices: dict[str, tuple[int, int]]  # name -> (first row, rows)

    def to_manifest(self) -> dict:
        return {"file": VOICES_FILE, "dim": self.dim,
                "voices": {name: {"first_row": first, "rows": rows} for name, (first, rows) in self.voices.items()}}  # fmt: skip


def _read_pt(path: Path) -> torch.Tensor:
    import pickle
    import zipfile

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VoiceError(f"{path} is not a readable voice file (a torch.save of one tensor): {first_line}") from None
    if isinstance(value, dict):  # some tools save {"name": tensor}
        tensors = [v for v in value.values() if isinstance(v, torch.Tensor)]
        value = tensors[0] if len(tensors) == 1 and len(value) == 1 else value
    if not isinstance(value, torch.Tensor):
        raise VoiceError(f"{path} holds a {type(value).__name__}, not one tensor [N, dim]")
    return value


def _read_bin(path: Path, dim: int, rows: int | None) -> torch.Tensor:
    """Raw little-endian bf16 or float32 rows. The size tells which, with the expected row
    count when it is ambiguous (a bf16 file of 2N rows is as long as a float32 file of N)."""
    size = path.stat().st_size
    candidates = [(dtype, width) for dtype, width in (("bf16", 2), ("f32", 4)) if size % (dim * width) == 0]
    if rows is not None:
        candidates = [(dtype, width) for dtype, width in candidates if size == rows * dim * width]
    if len(candidates) != 1:
        expected = f"{rows} rows of {dim}" if rows is not None else f"rows of {dim} (give voice_num_audio_tokens)"
        raise VoiceError(f"{path}: {size} bytes is not {expected} in bf16 or float32 unambiguously")
    dtype, width = candidates[0]
    data = np.fromfile(path, dtype="<u2" if dtype == "bf16" else "<f4").reshape(-1, dim)
    if dtype == "bf16":
        return torch.from_numpy(data.astype(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(data)


def expected_rows(tekken_path: Path) -> dict[str, int]:
    """tekken.json's audio.voice_num_audio_tokens (name -> N), or {} if it has none."""
    try:
        tekken = json.loads(Path(tekken_path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidModelError(f"{tekken_path} is not valid JSON ({e})") from None
    audio = tekken.get("audio") if isinstance(tekken, dict) else None
    rows = audio.get("voice_num_audio_tokens") if isinstance(audio, dict) else None
    if rows is None:
        return {}
    if not isinstance(rows, dict) or not all(isinstance(v, int) and v > 0 for v in rows.values()):
        raise InvalidModelError(f"{tekken_path}: audio.voice_num_audio_tokens must map voice names to row counts")
    return dict(rows)


def read_voice(path: Path, dim: int, rows: int | None = None) -> torch.Tensor:
    """One voice as float32 [N, dim] (bf16 values are exact in float32); `rows`: the expected N."""
    path = Path(path)
    if path.suffix == ".pt":
        voice = _read_pt(path)
    elif path.suffix == ".bin":
        voice = _read_bin(path, dim, rows)
    else:
        raise VoiceError(f"{path}: a voice is a .pt or .bin file")
    if voice.dtype not in (torch.bfloat16, torch.float16, torch.float32):
        raise VoiceError(f"{path}: a voice holds floats, not {voice.dtype}")
    if voice.dim() != 2 or voice.shape[1] != dim or voice.shape[0] == 0:
        raise VoiceError(f"{path}: a voice is [N, {dim}] (N rows of the model's width), got {list(voice.shape)}")
    if rows is not None and voice.shape[0] != rows:
        raise VoiceError(f"{path}: {voice.shape[0]} rows, but tekken.json's voice_num_audio_tokens says {rows}")
    voice = voice.float()
    if not torch.isfinite(voice).all():
        raise VoiceError(f"{path}: the voice holds NaN or infinite values")
    return voice


def read_voices(checkpoint_dir: Path, dim: int) -> dict[str, torch.Tensor]:
    """Every voice of the checkpoint (name -> float32 [N, dim]), in name order."""
    checkpoint_dir = Path(checkpoint_dir)
    voice_dir = checkpoint_dir / VOICE_DIR
    if not voice_dir.is_dir():
        raise NotFoundError(f"{checkpoint_dir} has no {VOICE_DIR}/ folder: a text-to-speech checkpoint ships its voices")
    expected = expected_rows(checkpoint_dir / "tekken.json")
    files: dict[str, Path] = {}
    for path in sorted(voice_dir.iterdir()):
        if path.suffix not in (".pt", ".bin") or not path.is_file():
            continue
        if path.stem in files:
            raise VoiceError(f"{voice_dir}: voice '{path.stem}' is there twice ({files[path.stem].name}, {path.name})")
        files[path.stem] = path
    if not files:
        raise NotFoundError(f"{voice_dir} holds no voice (.pt or .bin files)")
    missing = sorted(set(expected) - set(files))
    if missing:
        raise NotFoundError(f"{voice_dir}: tekken.json lists voices with no file: {', '.join(missing)}")
    return {name: read_voice(path, dim, expected.get(name)) for name, path in files.items()}


def write_voices(out_dir: Path, voices: dict[str, torch.Tensor]) -> VoiceIndex:
    """Writes `out_dir`/voices.f32 (every voice's rows, in name order) and returns its index."""
    dims = {v.shape[1] for v in voices.values()}
    if len(dims) != 1:
        raise VoiceError(f"voices of different widths: {sorted(dims)}")
    index, first = {}, 0
    with open(Path(out_dir) / VOICES_FILE, "wb") as f:
        for name in sorted(voices):
            rows = voices[name].to(torch.float32).contiguous().numpy().astype("<f4", copy=False)
            f.write(rows.tobytes())
            index[name] = (first, rows.shape[0])
            first += rows.shape[0]
    return VoiceIndex(dims.pop(), index)
