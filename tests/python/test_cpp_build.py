"""The C++ side as a C++ developer meets it: ctest (plain and under ASan+UBSan) and an
outside program built against the installed CMake package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import voxtral_native

# One xdist worker builds each preset once for every test here.
pytestmark = pytest.mark.xdist_group("cpp_build")

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


@pytest.fixture(scope="module")
def sanitize_build(tmp_path_factory):
    """Debug build with AddressSanitizer + UndefinedBehaviorSanitizer (any finding aborts)."""
    return build_preset("sanitize", tmp_path_factory.mktemp("build") / "sanitize")


SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:halt_on_error=1:detect_leaks=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}  # fmt: skip


def test_ctest_under_address_and_undefined_behaviour_sanitizers(sanitize_build):
    r = run(["ctest", "--test-dir", str(sanitize_build), "--output-on-failure"], cwd=ROOT,
            env={**os.environ, **SANITIZER_ENV})
    assert "100% tests passed" in r.stdout


# Artifacts whose sessions run each path of each custom kernel: voxtral::linear_wq's AVX2
# path (4-bit at group 32, 8-bit at group 16) and its portable path (group 8), and
# voxtral::ring_sdpa over float32 (the fp32 artifact), float16 and bfloat16 caches.
KERNEL_PATH_EXPORTS = {
    "fp16-enc8w:8-dec4w:32": dict(dtype="fp16", encoder_quant="8w:8", quant="4w:32"),
    "bf16-enc4w:8-dec8w:16": dict(dtype="bf16", encoder_quant="4w:8", quant="8w:16"),
}


@pytest.fixture(scope="module")
def kernel_path_artifacts(tiny_stt_dir, tmp_path_factory):
    from voxtral_native.export.export_stt import SttExportOptions, export_stt

    out = {}
    for name, options in KERNEL_PATH_EXPORTS.items():
        out[name] = tmp_path_factory.mktemp(name.replace(":", "g"))
        export_stt(tiny_stt_dir, out[name], SttExportOptions(**options), progress=lambda _: None)
    return out


def test_full_sessions_and_every_kernel_path_under_sanitizers(sanitize_build, tiny_stt_artifact,
                                                              kernel_path_artifacts):
    """ASan + UBSan over whole sessions, offline and streamed in 100 ms chunks and flushed,
    through every kernel path; the sanitized build's text equals the Python module's."""
    from voxtral_native.transcriber import Transcriber

    clip = ROOT / "tests" / "data" / "speech_en_flite.wav"
    exe = str(sanitize_build / "csrc" / "voxtral-transcribe")
    env = {**os.environ, **SANITIZER_ENV}
    for artifact in [tiny_stt_artifact, *kernel_path_artifacts.values()]:
        expected = Transcriber(artifact, progress=lambda _: None).transcribe(clip).text + "\n"
        for mode in ([], ["--stream"]):
            r = subprocess.run([exe, str(artifact), str(clip), *mode], capture_output=True, text=True, env=env,
                               timeout=1200)
            assert r.returncode == 0 and "Sanitizer" not in r.stderr, f"{artifact} {mode}:\n{r.stderr[-6000:]}"
            assert r.stdout == expected, (artifact, mode)


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
