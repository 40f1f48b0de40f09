"""Whole sessions on the AOTI backend: the tiny models exported for aoti-cpu (AOTInductor
packages compiled for the CPU, the GPU backend's format and code path) run by the same
runners as the ExecuTorch artifacts give the same tokens and codes.

The default build has no aoti backend, so the sessions run through the command-line programs
of conftest's native_build tree (libvoxtral with -DVOXTRAL_BACKENDS=xnnpack;aoti): the
same runner code as the Python module, on libtorch. The default build must refuse an aoti
artifact with an error that says how to rebuild."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import voxtral_native
from voxtral_native import _core

DATA = Path(__file__).parents[1] / "data"
CLIP = DATA / "speech_en_flite.wav"
TEXT = "Hello there. This is the tiny model speaking, for a test."


def run(exe: Path, *args) -> subprocess.CompletedProcess:
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{exe.name} {args} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_stt_session_on_aoti_gives_the_executorch_text(native_build, tiny_stt_aoti_artifact, tiny_stt_artifact):
    exe = native_build / "csrc" / "voxtral-transcribe"
    expected = voxtral_native.Transcriber(tiny_stt_artifact).transcribe(CLIP).text
    assert expected.strip()
    for mode in ([], ["--stream"]):  # offline (batched encode calls) and 100 ms chunks
        got = run(exe, tiny_stt_aoti_artifact, CLIP, *mode).stdout.strip()
        assert got == expected.strip(), mode
    # the same build runs the ExecuTorch artifact too (both backends in one libvoxtral)
    assert run(exe, tiny_stt_artifact, CLIP).stdout.strip() == expected.strip()


def test_a_runner_keeps_the_weights_loaded_between_sessions(native_build, tiny_stt_aoti_artifact):
    """Three files, one session each, one after another: each model of the package loads once
    (the runner's stateless Program holds them), not once per session (a package's models go
    with the last Program using them; a GPU session would reload seconds of weights)."""
    import os

    exe = native_build / "csrc" / "voxtral-transcribe"
    r = subprocess.run([str(exe), str(tiny_stt_aoti_artifact), CLIP, CLIP, CLIP], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "VOXTRAL_VERBOSE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    texts = [line.strip() for line in r.stdout.strip().splitlines()]
    assert len(texts) == 3 and texts[0] and len(set(texts)) == 1
    loads = [line for line in r.stderr.splitlines() if line.startswith("voxtral: loaded method ")]
    for method in ("encode", "decode"):
        assert sum(f"'{method}'" in line for line in loads) == 1, loads


def test_tts_session_on_aoti_gives_the_executorch_codes(native_build, tiny_tts_aoti_artifact, tiny_tts_artifact,
                                                        tmp_path):  # fmt: skip
    """Same codes, frame by frame: the audio agrees to float rounding (a single different
    semantic or acoustic code would change whole frames by orders of magnitude more)."""
    exe = native_build / "csrc" / "voxtral-speak"
    for voice, seed in (("casual_male", 7), ("fr_female", 0)):
        expected = voxtral_native.Synthesizer(tiny_tts_artifact).synthesize(TEXT, voice=voice, seed=seed, max_frames=40)
        out = tmp_path / f"{voice}.wav"
        run(exe, tiny_tts_aoti_artifact, TEXT, out, "--voice", voice, "--seed", seed, "--max-frames", 40)
        got, rate = sf.read(str(out), dtype="float32")
        assert rate == 24000 and got.shape == expected.shape == (40 * 1920,)
        assert np.abs(expected).max() > 1e-3
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_each_build_says_whether_it_runs_aoti_artifacts(tiny_stt_aoti_artifact, tiny_tts_aoti_artifact, tiny_stt_artifact):
    """A default build refuses aoti artifacts with an error that says how to rebuild; a build
    with the aoti backend runs them (and gives the ExecuTorch text)."""
    if "aoti" in _core.backends():
        want = voxtral_native.Transcriber(tiny_stt_artifact).transcribe(CLIP).text
        assert voxtral_native.Transcriber(tiny_stt_aoti_artifact).transcribe(CLIP).text == want
        assert voxtral_native.Synthesizer(tiny_tts_aoti_artifact).synthesize(TEXT, max_frames=5).size == 5 * 1920
        return
    with pytest.raises(voxtral_native.InvalidModelError) as e:
        voxtral_native.Transcriber(tiny_stt_aoti_artifact)
    assert "exported for aoti-cpu" in str(e.value) and "VOXTRAL_BACKENDS" in str(e.value)
    with pytest.raises(voxtral_native.InvalidModelError, match="exported for aoti-cpu"):
        voxtral_native.Synthesizer(tiny_tts_aoti_artifact)
    # libvoxtral's own reader says the same (the Python check is not the only one)
    with pytest.raises(voxtral_native.VoxtralError, match="exported for aoti-cpu; this build of libvoxtral runs"):
        _core.SttRunner.load(str(tiny_stt_aoti_artifact))
