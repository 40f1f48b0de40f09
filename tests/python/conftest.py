"""Shared fixtures: tiny random-weight checkpoints in Mistral's format (seed 0) and their export.

Each is made once per test run: under pytest-xdist (`-n 2`, the default in pyproject) the
workers share one copy through a file lock instead of each making its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each worker is one of the machine's processes: PyTorch's intra-op pool (set before torch
    # is imported) stays at one thread so two workers do not fight over the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def made_once(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], None]) -> Path:
    """`name` (a directory) made by `make(path)` once per run, shared by the xdist workers."""
    if worker_id == "master":  # no xdist
        path = tmp_path_factory.mktemp(name)
        make(path)
        return path
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent  # one directory above every worker's
    path, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tiny_stt_dir(tmp_path_factory, worker_id):
    """A tiny Voxtral-Mini-4B-Realtime-2602 checkpoint directory."""
    from voxtral_native.make_checkpoint import make_checkpoint

    return made_once(tmp_path_factory, worker_id, "tiny-stt", lambda p: make_checkpoint("stt", "tiny", p))


@pytest.fixture(scope="session")
def tiny_tts_dir(tmp_path_factory, worker_id):
    """A tiny Voxtral-4B-TTS-2603 checkpoint directory (with voice_embedding/*.pt)."""
    from voxtral_native.make_checkpoint import make_checkpoint

    return made_once(tmp_path_factory, worker_id, "tiny-tts", lambda p: make_checkpoint("tts", "tiny", p))


@pytest.fixture(scope="session")
def tiny_stt_artifact(tiny_stt_dir, tmp_path_factory, worker_id):
    """The tiny STT checkpoint exported (fp32, xnnpack) through the CLI, as a user would."""
    import subprocess
    import sys

    def export(out: Path) -> None:
        r = subprocess.run(
            [sys.executable, "-m", "voxtral_native", "export", "stt", "--checkpoint", str(tiny_stt_dir),
             "--out", str(out)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        assert "wrote" in r.stdout and "lowering for xnnpack" in r.stdout  # progress output

    return made_once(tmp_path_factory, worker_id, "stt-fp32", export)
