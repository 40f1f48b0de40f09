"""The artifact index: ``manifest.json``, written by ``voxtral-native export`` beside the files
it lists, says what a model directory is. Python and libvoxtral (csrc/runtime/artifact.cpp)
read the same file and check it the same way::

    {"format_version": 1, "kind": "stt", "backend": "xnnpack",
     "files": {"program": "model.pte", "tokenizer": "tekken.json"},
     "options": {...}, "model": "...", "metadata": {...}, ...}

Model constants (shapes, the stream schedule) stay in the program's constant methods; the
manifest's copy of them is for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from voxtral_native.errors import InvalidModelError, NotFoundError, UnsupportedVersionError

# The artifact layout this version writes and reads; the program's `format_version`
# constant carries the same number. Bump it when a file, a method signature or a
# constant's meaning changes.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Model kinds, and what each is called in messages.
KINDS = {"stt": "speech-to-text", "tts": "text-to-speech"}
# The runtime backend (voxtral_native._core.backends()) that runs each export backend's
# programs: ExecuTorch programs (XNNPACK-delegated or portable) on xnnpack, AOTInductor
# packages for any device on aoti (csrc/runtime/artifact.cpp says the same).
RUNTIME_BACKEND = {"xnnpack": "xnnpack", "portable": "xnnpack", "aoti-cpu": "aoti", "cuda": "aoti", "metal": "aoti"}


def backends_built() -> list[str]:
    """The export backends whose programs this build runs."""
    from voxtral_native import native

    built = set(native().backends())
    return [b for b, runtime in RUNTIME_BACKEND.items() if runtime in built]


@dataclass(frozen=True)
class Artifact:
    path: Path
    kind: str
    backend: str
    files: dict[str, str]  # role ("program", "tokenizer", ...) -> file name in `path`
    format_version: int = FORMAT_VERSION
    manifest: dict = field(default_factory=dict, repr=False)

    def file(self, role: str) -> Path:
        if role not in self.files:
            raise InvalidModelError(f"the manifest of {self.path} lists no {role} file")
        return self.path / self.files[role]


def is_artifact_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_manifest(out_dir: Path, kind: str, backend: str, files: dict[str, str], **fields) -> Path:
    """Writes `out_dir`/manifest.json (last, so a directory with one is complete)."""
    manifest = {"format_version": FORMAT_VERSION, "kind": kind, "backend": backend, "files": files, **fields}
    path = Path(out_dir) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_artifact(path: str | Path, kind: str | None = None) -> Artifact:
    """Reads and checks `path`/manifest.json; `kind` is what the caller needs ("stt", "tts").

    NotFoundError for a missing directory, manifest or listed file; UnsupportedVersionError
    for another format version; InvalidModelError for a manifest that is not valid JSON, a
    model of another kind, or a backend this build does not run.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise NotFoundError(f"model directory {path} does not exist")
    if not manifest_path.is_file():
        raise NotFoundError(f"{path} has no {MANIFEST}: not a model exported by voxtral-native "
                            "(export it with `voxtral-native export`, or re-export one from an older version)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidModelError(f"{manifest_path} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise InvalidModelError(f"{manifest_path}: the top level must be an object")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise UnsupportedVersionError(f"{manifest_path} has no format_version: written by an older voxtral-native "
                                      "(re-export the model)")
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(f"{path} has artifact format version {version}; this voxtral-native reads "
                                      f"version {FORMAT_VERSION} (re-export it with the matching voxtral-native)")
    for key in ("kind", "backend"):
        if not isinstance(manifest.get(key), str):
            raise InvalidModelError(f"{manifest_path}: '{key}' must be a string")
    found = manifest["kind"]
    if kind is not None and found != kind:
        raise InvalidModelError(f"{path} is a {KINDS.get(found, 'unknown')} model (kind '{found}'); "
                                f"expected a {KINDS[kind]} model (kind '{kind}')")
    built = backends_built()
    if manifest["backend"] not in built:
        hint = ""
        if RUNTIME_BACKEND.get(manifest["backend"]) == "aoti":
            hint = ' (rebuild with -Ccmake.define.VOXTRAL_BACKENDS="xnnpack;aoti": README, Install)'
        raise InvalidModelError(f"{path} was exported for {manifest['backend']}; this build of voxtral-native "
                                f"runs {', '.join(built)}{hint}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise InvalidModelError(f"{manifest_path}: 'files' must map roles to file names")
    for role, name in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise InvalidModelError(f"{manifest_path}: files.{role} must be a file name inside the directory")
        if not (path / name).is_file():
            raise NotFoundError(f"{path} lists {role} file '{name}' but it is missing")
    return Artifact(path, found, manifest["backend"], dict(files), version, manifest)
