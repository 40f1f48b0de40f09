"""Random-weight Voxtral checkpoints in Mistral's own format.

Real weights cannot be downloaded where this project is tested, and speed does not
depend on weight values, so tests and benchmarks run on checkpoints made here::

    from voxtral_native.make_checkpoint import make_checkpoint
    make_checkpoint("stt", "tiny", "ckpt/stt-tiny")   # params.json, consolidated.safetensors, tekken.json
    make_checkpoint("tts", "full", "ckpt/tts-full", progress=print)  # + voice_embedding/*.pt

Same seed, same bytes. Needs the ``[export]`` extra (mistral_common for the Tekken
vocabulary; torch for the TTS voice files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from os import PathLike
from pathlib import Path

from voxtral_native.errors import InvalidArgumentError
from voxtral_native.make_checkpoint import specs
from voxtral_native.make_checkpoint.safetensors_writer import write_bf16_safetensors
from voxtral_native.make_checkpoint.tekken import write_tekken
from voxtral_native.make_checkpoint.voices import write_voices
from voxtral_native.make_checkpoint.weights import bf16_chunks

MODELS = ("stt", "tts")  # Voxtral-Mini-4B-Realtime-2602, Voxtral-4B-TTS-2603

__all__ = ["MODELS", "make_checkpoint"]


def make_checkpoint(
    model: str,
    size: str,
    out_dir: str | PathLike[str],
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write a random-weight checkpoint of ``model`` ("stt" or "tts") to ``out_dir``.

    ``size`` "full" has the real sizes (~9 GB, streamed to disk in about a minute);
    "tiny" the same structure at small widths (~30 MB). ``out_dir`` is created; a
    directory that already holds a params.json is refused. params.json is written
    last, so an interrupted run leaves no params.json and can simply be rerun.
    ``progress`` receives one line per ~0.5 GB written. Returns ``out_dir``.
    """
    if model not in MODELS:
        raise InvalidArgumentError(f"unknown model {model!r}: expected one of {', '.join(map(repr, MODELS))}")
    if size not in specs.SIZES:
        raise InvalidArgumentError(f"unknown size {size!r}: expected one of {', '.join(map(repr, specs.SIZES))}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out_dir)
    if (out / "params.json").exists():
        raise FileExistsError(f"{out} already holds a checkpoint (params.json): choose another directory")
    out.mkdir(parents=True, exist_ok=True)

    if model == "stt":
        params = specs.stt_params(size)
        tensors = specs.stt_tensors(params)
        audio = specs.stt_tekken_audio(params)
    else:
        params = specs.tts_params(size)
        tensors = specs.tts_tensors(params)
        voice_frames = specs.tts_voice_frames(size)
        audio = specs.tts_tekken_audio(params, voice_frames)

    write_bf16_safetensors(out / "consolidated.safetensors", tensors, lambda t: bf16_chunks(t, seed), progress)
    write_tekken(out / "tekken.json", audio)
    if model == "tts":
        write_voices(out, voice_frames, params["dim"], seed)
    (out / "params.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    return out
