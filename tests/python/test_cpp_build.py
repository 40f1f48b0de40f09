"""The C++ side as a C++ developer meets it: ctest (plain and under ASan+UBSan) and an
outside program built against the installed CMake package. The CMake build trees are
conftest's `native_build` and `sanitize_build`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import voxtral_native

ROOT = Path(__file__).parents[2]
TINY_PROGRAM = ROOT / "tests" / "data" / "tiny_linear.pte"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def test_ctest(native_build):
    r = run(["ctest", "--test-dir", str(native_build), "--output-on-failure"], cwd=ROOT)
    assert "100% tests passed" in r.stdout


SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:halt_on_error=1:detect_leaks=1",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}  # fmt: skip


def test_ctest_under_address_and_undefined_behaviour_sanitizers(sanitize_build):
    r = run(["ctest", "--test-dir", str(sanitize_build), "--output-on-failure"], cwd=ROOT,
            env={**os.environ, **SANITIZER_ENV})
    assert "100% tests passed" in r.stdout


# Sessions that together take every path of the custom kernels (conftest.STT_VARIANTS):
# ring_sdpa over float32, float16 and bfloat16 caches; linear_wq 4-bit and 8-bit, on the
# AVX2 path and (VOXTRAL_DISABLE_AVX2=1) on the portable one. (The fp32 artifact adds no
# path: enc4w-dec8w-emb8w's caches are float32 too.) One test each, so that xdist spreads
# them over the workers.
# (artifact, whether the AVX2 path is off, modes). The portable linear_wq path has no
# row-count-dependent code, so one mode covers it; the AVX2 and attention paths differ between
# offline calls (many rows) and streamed ones (a few), so those run both.
BOTH, STREAMED = ([], ["--stream"]), (["--stream"],)
SANITIZED_SESSIONS = [
    ("fp16-enc4w-dec8da4w-emb4w", False, BOTH),  # fp16 caches; 4-bit encoder
    ("fp16-enc4w-dec8da4w-emb4w", True, STREAMED),
    ("enc4w-dec8w-emb8w", False, BOTH),  # 4-bit encoder, 8-bit decoder
    ("enc4w-dec8w-emb8w", True, STREAMED),
    ("bf16", False, BOTH),  # bf16 caches
]


@pytest.mark.parametrize(("variant", "portable", "modes"), SANITIZED_SESSIONS,
                         ids=[f"{v}{'-portable' if p else ''}" for v, p, _ in SANITIZED_SESSIONS])
def test_full_sessions_and_every_kernel_path_under_sanitizers(sanitize_build, tiny_stt_variant, variant, portable,
                                                              modes):
    """ASan + UBSan over whole sessions, offline and streamed in 100 ms chunks and flushed;
    the sanitized build's text equals the Python module's."""
    from voxtral_native.transcriber import Transcriber

    clip = ROOT / "tests" / "data" / "speech_en_flite.wav"
    exe = str(sanitize_build / "csrc" / "voxtral-transcribe")
    artifact = tiny_stt_variant(variant)
    expected = Transcriber(artifact, progress=lambda _: None).transcribe(clip).text + "\n"
    env = {**os.environ, **SANITIZER_ENV, **({"VOXTRAL_DISABLE_AVX2": "1"} if portable else {})}
    for mode in modes:
        r = subprocess.run([exe, str(artifact), str(clip), *mode], capture_output=True, text=True, env=env,
                           timeout=1200)
        where = f"{artifact.name} {mode} portable={portable}"
        assert r.returncode == 0 and "Sanitizer" not in r.stderr, f"{where}:\n{r.stderr[-6000:]}"
        if not portable:  # the portable path sums in another order: tokens may differ at ties
            assert r.stdout == expected, where


def test_cpp_command_line_program_transcribes_like_python(native_build, tiny_stt_artifact):
    from voxtral_native.transcriber import Transcriber

    clip = ROOT / "tests" / "data" / "speech_en_flite.wav"
    expected = Transcriber(tiny_stt_artifact).transcribe(clip).text
    exe = str(native_build / "csrc" / "voxtral-transcribe")
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
