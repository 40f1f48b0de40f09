"""Shared fixtures: tiny random-weight checkpoints in Mistral's format (seed 0)."""

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
