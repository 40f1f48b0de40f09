"""What `model` may be, in Transcriber(...) and --model alike:

- an artifact directory written by `voxtral-native export` (model.pte + tekken.json);
- a Mistral checkpoint directory (params.json + consolidated.safetensors + tekken.json):
  exported on first use into the cache, with progress output, and reused afterwards;
- a Hugging Face repo id such as ``mistralai/Voxtral-Mini-4B-Realtime-2602``: downloaded
  with huggingface_hub (where the network allows), then exported and cached.

The cache lives in $VOXTRAL_NATIVE_CACHE, else $XDG_CACHE_HOME/voxtral-native, else
~/.cache/voxtral-native. An entry is keyed by the checkpoint's identity (path, sizes and
modification times of its files) and the export options, and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from voxtral_native.errors import NotFoundError, VoxtralError

ARTIFACT_FILES = ("model.pte", "tekken.json")
CHECKPOINT_FILES = ("params.json", "consolidated.safetensors", "tekken.json")
# What a first use exports to: int4 linears with int8 dynamic activations, int8 table.
DEFAULT_EXPORT = {"quant": "8da4w", "encoder_quant": "8da4w", "embedding_quant": "8w"}


def cache_dir() -> Path:
    if os.environ.get("VOXTRAL_NATIVE_CACHE"):
        return Path(os.environ["VOXTRAL_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voxtral-native"


def is_artifact_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in ARTIFACT_FILES)


def is_checkpoint_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in CHECKPOINT_FILES)


def _cache_key(checkpoint: Path, options: dict) -> str:
    h = hashlib.sha256()
    h.update(str(checkpoint.resolve()).encode())
    for name in CHECKPOINT_FILES:
        st = (checkpoint / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()[:20]


def export_cached(checkpoint: Path, options: dict | None, progress: Callable[[str], None]) -> Path:
    options = dict(DEFAULT_EXPORT if options is None else options)
    target = cache_dir() / "stt" / _cache_key(checkpoint, options)
    if is_artifact_dir(target):
        return target
    try:
        from voxtral_native.export.export_stt import SttExportOptions, export_stt
    except ImportError as e:
        raise VoxtralError(
            f"{checkpoint} is a checkpoint; exporting it on first use needs the [export] extra "
            f"(pip install 'voxtral-native[export]'): {e}"
        ) from e
    progress(f"exporting {checkpoint} on first use (cached in {target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_stt(checkpoint, tmp, SttExportOptions(**options), progress=progress)
        tmp.rename(target)  # atomic: a crash never leaves a half-written entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def download(repo_id: str, progress: Callable[[str], None]) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise VoxtralError(f"downloading '{repo_id}' needs huggingface_hub (pip install huggingface_hub)") from e
    progress(f"downloading {repo_id} from the Hugging Face Hub")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(CHECKPOINT_FILES)))
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise NotFoundError(f"could not download '{repo_id}' from the Hugging Face Hub: {e}") from None


def resolve_model(model: str | os.PathLike, export_options: dict | None = None,
                  progress: Callable[[str], None] = print) -> Path:
    """The artifact directory for `model` (see the module docstring)."""
    path = Path(model)
    if path.is_dir():
        if is_artifact_dir(path):
            return path
        if is_checkpoint_dir(path):
            return export_cached(path, export_options, progress)
        raise NotFoundError(
            f"{path} is neither an exported model (model.pte + tekken.json) nor a Mistral checkpoint "
            "(params.json + consolidated.safetensors + tekken.json)"
        )
    text = str(model)
    if text.count("/") == 1 and not path.exists() and not text.startswith((".", "/")):
        return export_cached(download(text, progress), export_options, progress)
    raise NotFoundError(f"model '{text}' is not a directory and not a Hugging Face repo id (owner/name)")
