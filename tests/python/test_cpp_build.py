"""The C++ side as a C++ developer meets it: ctest (plain and under ASan+UBSan) and an
outside program built against the installed CMake package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import voxtral_native

ROOT = Path(__file__).parents[2]
TINY_PROGRAM = ROOT / "tests" / "data" / "tiny_linear.pte"



def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def env_with_this_python() -> dict[str, str]:
    # CMake locates the ExecuTorch wheel through the Python on PATH: make it ours.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def build_preset(preset: str, build: Path) -> Path:
    env = env_with_this_python()
    run(["cmake", "--preset", preset, "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"], cwd=ROOT, env=env)
    run(["cmake", "--build", str(build)], cwd=ROOT, env=env)
    return build


@pytest.fixture(scope="module")
def release_build(tmp_path_factory):
    return build_preset("xnnpack", tmp_path_factory.mktemp("build") / "xnnpack")


def test_ctest(release_build):
    r = run(["ctest", "--test-dir", str(release_build), "--output-on-failure"], cwd=ROOT)
    assert "100% tests passed" in r.stdout


def test_ctest_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    build = build_preset("sanitize", tmp_path / "sanitize")
    r = run(["ctest", "--test-dir", str(build), "--output-on-failure"], cwd=ROOT)
    assert "100% tests passed" in r.stdout


def test_cpp_command_line_program_transcribes_like_python(release_build, tiny_stt_artifact):
    from voxtral_native.transcriber import Transcriber

    clip = ROOT / "tests" / "data" / "speech_en_flite.wav"
    expected = Transcriber(tiny_stt_artifact).transcribe(clip).text
    exe = str(release_build / "csrc" / "voxtral-transcribe")
    assert run([exe, str(tiny_stt_artifact), str(clip)]).stdout == expected + "\n"
    assert run([exe, str(tiny_stt_artifact), str(clip), "--stream"]).stdout == expected + "\n"
    bad = subprocess.run([exe, str(tiny_stt_artifact), str(ROOT / "README.md")], capture_output=True, text=True)
    assert bad.returncode == 1 and "not a WAV file" in bad.stderr


def test_outside_consumer_builds_against_installed_package(tmp_path):
    build = tmp_path / "consumer"
    run(["cmake", "-S", str(ROOT / "tests" / "consumer"), "-B", str(build), "-G", "Ninja",
         f"-Dvoxtral_DIR={voxtral_native.cmake_dir()}"])
    run(["cmake", "--build", str(build)])
    r = run([str(build / "voxtral_consumer"), str(TINY_PROGRAM)])
    assert f"libvoxtral {voxtral_native.__version__}" in r.stdout
    assert "method forward" in r.stdout
    # x = ones([2, 4]): y[i] = sum_j (i - j) / 8 + i / 4
    assert "forward: -0.75 0 0.75 1.5 -0.75 0 0.75 1.5" in r.stdout
