"""What `model` may be, in Transcriber(...) and --model alike:

- an artifact directory written by `voxtral-native export` (its manifest.json says the
  model kind, backend and files; artifact.py reads it);
- a Mistral checkpoint directory (params.json + consolidated.safetensors + tekken.json):
  exported on first use into the cache, with progress output, and reused afterwards;
- a Hugging Face repo id such as ``mistralai/Voxtral-Mini-4B-Realtime-2602``: downloaded
  with huggingface_hub (where the network allows), then exported and cached.

The cache lives in $VOXTRAL_NATIVE_CACHE, else $XDG_CACHE_HOME/voxtral-native, else
~/.cache/voxtral-native. An entry is keyed by the checkpoint's identity (path, sizes and
modification times of its files), the artifact format version and the export options, and
written atomically; entries live under one folder per model kind.

Everything here routes by model kind ("stt", "tts"): a new kind adds a row to EXPORTERS.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voxtral_native.artifact import FORMAT_VERSION, KINDS, is_artifact_dir, read_artifact
from voxtral_native.errors import InvalidModelError, NotFoundError, VoxtralError

CHECKPOINT_FILES = ("params.json", "consolidated.safetensors", "tekken.json")


@dataclass(frozen=True)
class Exporter:
    """How a first use exports a checkpoint of one kind: voxtral_native.export.<module>.<function>
    with <options_class>(**defaults)."""

    module: str
    function: str
    options_class: str
    defaults: dict
    extra_files: tuple[str, ...] = ()  # what a Hub download fetches beside CHECKPOINT_FILES


EXPORTERS = {
    # decoder: int4 linears with int8 dynamic activations (a one-token step reads its weights:
    # fewer bytes pay); encoder: int8 per-channel weights, whose 128-row calls are compute-bound
    # and which XNNPACK runs 1.67x faster than int4 where the CPU lacks VNNI (Zen 3) and 1.05-1.2x
    # faster where it has it (benchmarks/results/linear_kernels.md), more exactly too; int8 table
    "stt": Exporter("export_stt", "export_stt", "SttExportOptions",
                    {"quant": "8da4w", "encoder_quant": "8da8w", "embedding_quant": "8w"}),
    # the LM as the speech-to-text decoder; the acoustic transformer reads its weights 7
    # times per frame (one per Euler step), int8 with dynamic activations; the codec float32
    "tts": Exporter("export_tts", "export_tts", "TtsExportOptions",
                    {"quant": "8da4w", "acoustic_quant": "8da8w", "embedding_quant": "8w"},
                    extra_files=("voice_embedding/*",)),
}  # fmt: skip


def cache_dir() -> Path:
    if os.environ.get("VOXTRAL_NATIVE_CACHE"):
        return Path(os.environ["VOXTRAL_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voxtral-native"


def is_checkpoint_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in CHECKPOINT_FILES)


def checkpoint_kind(checkpoint: Path) -> str:
    """The model kind of a Mistral checkpoint, from its params.json."""
    try:
        params = json.loads((checkpoint / "params.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidModelError(f"{checkpoint / 'params.json'} is not valid JSON ({e})") from None
    multimodal = params.get("multimodal") if isinstance(params, dict) else None
    if isinstance(multimodal, dict) and "whisper_model_args" in multimodal:
        return "stt"  # Voxtral Realtime: an audio encoder in front of the LM
    if isinstance(multimodal, dict) and "audio_model_args" in multimodal:
        return "tts"  # Voxtral TTS: acoustic transformer and codec behind the LM
    raise InvalidModelError(f"{checkpoint} is not a Voxtral checkpoint: its params.json has neither "
                            "multimodal.whisper_model_args (speech-to-text) nor multimodal.audio_model_args "
                            "(text-to-speech)")


def _cache_key(checkpoint: Path, options: dict) -> str:
    h = hashlib.sha256()
    h.update(str(checkpoint.resolve()).encode())
    for name in CHECKPOINT_FILES:
        st = (checkpoint / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(f"format:{FORMAT_VERSION}".encode())  # a new layout never reuses an old entry
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()[:20]


def export_cached(checkpoint: Path, kind: str, options: dict | None, progress: Callable[[str], None]) -> Path:
    found = checkpoint_kind(checkpoint)
    if found != kind:
        raise InvalidModelError(f"{checkpoint} is a {KINDS[found]} checkpoint; expected a {KINDS[kind]} one")
    if kind not in EXPORTERS:
        raise VoxtralError(f"{checkpoint} is a {KINDS[kind]} checkpoint; this version cannot export it yet")
    exporter = EXPORTERS[kind]
    options = dict(exporter.defaults if options is None else options)
    target = cache_dir() / kind / _cache_key(checkpoint, options)
    if is_artifact_dir(target):
        return target
    try:
        import importlib

        module = importlib.import_module(f"voxtral_native.export.{exporter.module}")
    except ImportError as e:
        raise VoxtralError(
            f"{checkpoint} is a checkpoint; exporting it on first use needs the [export] extra "
            f"(pip install 'voxtral-native[export]'): {e}"
        ) from e
    progress(f"exporting {checkpoint} on first use (cached in {target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export = getattr(module, exporter.function)
        export(checkpoint, tmp, getattr(module, exporter.options_class)(**options), progress=progress)
        tmp.rename(target)  # atomic: a crash never leaves a half-written entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def download(repo_id: str, kind: str, progress: Callable[[str], None]) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise VoxtralError(f"downloading '{repo_id}' needs huggingface_hub (pip install huggingface_hub)") from e
    progress(f"downloading {repo_id} from the Hugging Face Hub")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=[*CHECKPOINT_FILES, *EXPORTERS[kind].extra_files]))
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise NotFoundError(f"could not download '{repo_id}' from the Hugging Face Hub: {e}") from None


def resolve_model(model: str | os.PathLike, kind: str, export_options: dict | None = None,
                  progress: Callable[[str], None] = print) -> Path:
    """The artifact directory of kind `kind` ("stt", "tts") for `model` (see the module
    docstring); an artifact or checkpoint of another kind is an InvalidModelError."""
    path = Path(model)
    if path.is_dir():
        if is_artifact_dir(path):
            return read_artifact(path, kind).path
        if is_checkpoint_dir(path):
            return export_cached(path, kind, export_options, progress)
        raise NotFoundError(
            f"{path} is neither an exported model (with manifest.json) nor a Mistral checkpoint "
            "(params.json + consolidated.safetensors + tekken.json)"
        )
    text = str(model)
    if text.count("/") == 1 and not path.exists() and not text.startswith((".", "/")):
        return export_cached(download(text, kind, progress), kind, export_options, progress)
    raise NotFoundError(f"model '{text}' is not a directory and not a Hugging Face repo id (owner/name)")
