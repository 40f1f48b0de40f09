"""Shared fixtures: tiny random-weight checkpoints in Mistral's format (seed 0) and their export."""

import pytest


@pytest.fixture(scope="session")
def tiny_stt_dir(tmp_path_factory):
    """A tiny Voxtral-Mini-4B-Realtime-2602 checkpoint directory."""
    from voxtral_native.make_checkpoint import make_checkpoint

    return make_checkpoint("stt", "tiny", tmp_path_factory.mktemp("tiny-stt"))


@pytest.fixture(scope="session")
def tiny_tts_dir(tmp_path_factory):
    """A tiny Voxtral-4B-TTS-2603 checkpoint directory (with voice_embedding/*.pt)."""
    from voxtral_native.make_checkpoint import make_checkpoint

    return make_checkpoint("tts", "tiny", tmp_path_factory.mktemp("tiny-tts"))


@pytest.fixture(scope="session")
def tiny_stt_artifact(tiny_stt_dir, tmp_path_factory):
    """The tiny STT checkpoint exported (fp32, xnnpack) through the CLI, as a user would."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("stt-fp32")
    r = subprocess.run(
        [sys.executable, "-m", "voxtral_native", "export", "stt", "--checkpoint", str(tiny_stt_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "wrote" in r.stdout and "lowering for xnnpack" in r.stdout  # progress output
    return out
