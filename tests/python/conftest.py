"""Shared fixtures: tiny random-weight checkpoints in Mistral's format (seed 0) and their export.

Each is made once per test run: under pytest-xdist (`-n 2`, the default in pyproject) the
workers share one copy through a file lock instead of each making its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
        assert "wrote" in r.stdout and "compiling for xnnpack" in r.stdout  # progress output

    return made_once(tmp_path_factory, worker_id, "stt-fp32", export)


# Tiny STT exports used by more than one test module, by name (SttExportOptions fields).
# Three quantized exports cover every supported scheme: each linear scheme on the encoder
# and on the decoder, each embedding scheme, per-channel and grouped scales; with the half
# ones they also take every path of the custom kernels (test_cpp_build's sanitizer run):
# voxtral::linear_wq 4-bit at group 32 and 8-bit per channel (AVX2 path; the portable path
# by VOXTRAL_DISABLE_AVX2=1), voxtral::ring_sdpa over float32, float16 and bfloat16 caches.
STT_VARIANTS = {
    "enc8da8w-dec8da4w-emb4w": dict(encoder_quant="8da8w", quant="8da4w", embedding_quant="4w"),
    "enc8da4w-dec8da8w-emb8w": dict(encoder_quant="8da4w", quant="8da8w", embedding_quant="8w"),
    "enc4w-dec8w-emb8w": dict(encoder_quant="4w:32", quant="8w", embedding_quant="8w"),
    "fp16-enc4w-dec8da4w-emb4w": dict(encoder_quant="4w:32", quant="8da4w", embedding_quant="4w", dtype="fp16"),
    "bf16": dict(dtype="bf16"),
    "fp16": dict(dtype="fp16"),
}


@pytest.fixture(scope="session")
def tiny_stt_aoti_artifact(tiny_stt_dir, tmp_path_factory, worker_id):
    """The tiny STT checkpoint exported for aoti-cpu: an AOTInductor package (model.pt2)."""
    from voxtral_native.export.export_stt import SttExportOptions, export_stt

    def export(out: Path) -> None:
        export_stt(tiny_stt_dir, out, SttExportOptions(backend="aoti-cpu"), progress=lambda _: None)

    return made_once(tmp_path_factory, worker_id, "stt-aoti-cpu", export)


@pytest.fixture(scope="session")
def tiny_tts_aoti_artifact(tiny_tts_dir, tmp_path_factory, worker_id):
    """The tiny TTS checkpoint exported for aoti-cpu (fp32): an AOTInductor package."""
    from voxtral_native.export.export_tts import TtsExportOptions, export_tts

    def export(out: Path) -> None:
        export_tts(tiny_tts_dir, out, TtsExportOptions(backend="aoti-cpu"), progress=lambda _: None)

    return made_once(tmp_path_factory, worker_id, "tts-aoti-cpu", export)


@pytest.fixture(scope="session")
def tiny_stt_variant(tiny_stt_dir, tmp_path_factory, worker_id):
    """tiny_stt_variant(name) -> the tiny checkpoint exported with STT_VARIANTS[name], once per run."""

    def get(name: str) -> Path:
        from voxtral_native.export.export_stt import SttExportOptions, export_stt

        def export(out: Path) -> None:
            export_stt(tiny_stt_dir, out, SttExportOptions(**STT_VARIANTS[name]), progress=lambda _: None)

        return made_once(tmp_path_factory, worker_id, f"stt-{name}", export)

    return get


@pytest.fixture(scope="session")
def tiny_tts_artifact(tiny_tts_dir, tmp_path_factory, worker_id):
    """The tiny TTS checkpoint exported (fp32, xnnpack) through the CLI, as a user would."""
    import subprocess
    import sys

    def export(out: Path) -> None:
        r = subprocess.run(
            [sys.executable, "-m", "voxtral_native", "export", "tts", "--checkpoint", str(tiny_tts_dir),
             "--out", str(out)],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        assert "wrote" in r.stdout and "compiling for xnnpack" in r.stdout  # progress output

    return made_once(tmp_path_factory, worker_id, "tts-fp32", export)


# The tiny TTS export beside the fp32 one (TtsExportOptions fields): every part quantized
# (each linear scheme once, per-channel and grouped) with bf16 program edges (what the
# runner's bf16 staging is tested with; bf16 compute on the CPU runs mostly in portable
# kernels, and its lowering alone took ~8 minutes here), and few positions so that an
# utterance of random weights (which never say END_AUDIO) ends when its positions run out.
# One export for both: each tiny TTS export takes 3-5 minutes of CI.
TTS_VARIANTS = {
    "quantized-bf16-edges": dict(quant="8da4w", acoustic_quant="8da8w", codec_quant="4w:32", embedding_quant="8w",
                                 bf16_edges=True, max_positions=192, max_prompt_tokens=96),
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_tts_variant(tiny_tts_dir, tmp_path_factory, worker_id):
    """tiny_tts_variant(name) -> the tiny TTS checkpoint exported with TTS_VARIANTS[name], once per run."""

    def get(name: str) -> Path:
        from voxtral_native.export.export_tts import TtsExportOptions, export_tts

        def export(out: Path) -> None:
            export_tts(tiny_tts_dir, out, TtsExportOptions(**TTS_VARIANTS[name]), progress=lambda _: None)

        return made_once(tmp_path_factory, worker_id, f"tts-{name}", export)

    return get


# --- CMake builds of the C++ tree (beside the one pip made for the Python module) ----------

ROOT = Path(__file__).parents[2]


def build_preset(preset: str, build: Path) -> Path:
    """Configures and builds a CMakePresets.json preset into `build` (CMake finds the
    ExecuTorch wheel and libtorch through this Python)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for cmd in (["cmake", "--preset", preset, "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"],
                ["cmake", "--build", str(build)]):  # fmt: skip
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return build


@pytest.fixture(scope="session")
def native_build(tmp_path_factory, worker_id):
    """The aoti-cpu preset (Release): libvoxtral with both backends (ExecuTorch + XNNPACK, and
    AOTInductor packages through this Python's libtorch), the C++ unit tests, test_aoti and
    both command-line programs. One build serves ctest, the programs and the AOTI tests; the
    XNNPACK-only configuration is the one pip builds, and the sanitize preset's."""
    return made_once(tmp_path_factory, worker_id, "build-aoti-cpu", lambda path: build_preset("aoti-cpu", path))


@pytest.fixture(scope="session")
def sanitize_build(tmp_path_factory, worker_id):
    """The sanitize preset: Debug, XNNPACK only, AddressSanitizer + UndefinedBehaviorSanitizer."""
    return made_once(tmp_path_factory, worker_id, "build-sanitize", lambda path: build_preset("sanitize", path))


# --- making the expensive fixtures in parallel ----------------------------------------------

# The fixtures that take minutes to make, with about what each took on 2 cores of a Zen 3
# (seconds, alone; a build counts twice: it keeps both cores busy). Under xdist each worker
# first makes its share of those the run's tests use, so that the workers make them side by
# side. Without this, both workers' first tests (the server's, which need the fp32 STT and
# TTS exports) waited on the same exports, one worker idle for minutes, and later tests
# waited on exports that the other worker had just begun.
EXPENSIVE = {
    "tiny_tts_aoti_artifact": 240,
    "tiny_tts_artifact": 160,
    "tiny_stt_aoti_artifact": 140,
    "tiny_stt_artifact": 60,
    "native_build": 200,
    "sanitize_build": 150,
    ("tiny_tts_variant", "quantized-bf16-edges"): 330,
    ("tiny_stt_variant", "enc8da8w-dec8da4w-emb4w"): 103,
    ("tiny_stt_variant", "enc8da4w-dec8da8w-emb8w"): 92,
    ("tiny_stt_variant", "enc4w-dec8w-emb8w"): 41,
    ("tiny_stt_variant", "fp16-enc4w-dec8da4w-emb4w"): 86,
    ("tiny_stt_variant", "bf16"): 40,
    ("tiny_stt_variant", "fp16"): 56,
}
for getter, variants in (("tiny_stt_variant", STT_VARIANTS), ("tiny_tts_variant", TTS_VARIANTS)):
    assert {k[1] for k in EXPENSIVE if k[0] == getter} == set(variants), f"EXPENSIVE lacks a {getter}"


def _shares(needed: list, workers: int) -> list[list]:
    """`needed` (keys of EXPENSIVE) split over `workers`: each next-longest to the worker with
    the least so far (longest processing time first)."""
    shares: list[list] = [[] for _ in range(workers)]
    load = [0] * workers
    for key in sorted(needed, key=lambda k: -EXPENSIVE[k]):
        i = load.index(min(load))
        shares[i].append(key)
        load[i] += EXPENSIVE[key]
    return shares


@pytest.fixture(scope="session", autouse=True)
def make_expensive_fixtures_in_parallel(request, worker_id):
    if worker_id == "master":  # one process: each fixture is made when a test first asks
        return
    used = set().union(*(item.fixturenames for item in request.session.items))
    needed = [k for k in EXPENSIVE if (k[0] if isinstance(k, tuple) else k) in used]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    for key in _shares(needed, workers)[int(worker_id.removeprefix("gw")) % workers]:
        if isinstance(key, tuple):  # a variant: the getter fixture, called with its name
            request.getfixturevalue(key[0])(key[1])
        else:
            request.getfixturevalue(key)


# Tests with a minute or more of work of their own (beyond the shared fixtures) run first,
# so that the run does not end on one of them while the other worker idles.
RUN_FIRST = (
    "test_cpp_build.py::test_full_sessions_and_every_kernel_path_under_sanitizers",
    "test_aoti_export.py::test_int4_package_matches_the_eager_int4_model",
    "test_transcriber.py::test_a_checkpoint_directory_is_exported_on_first_use_and_cached",
    "test_stt_speculative.py::test_speculation_gives_the_one_step_tokens",
    "test_stt_export.py::test_export_never_reads_its_uninitialized_state",
    "test_stt_export.py::test_ring_caches_past_their_windows_match_unwrapped_attention",
    "test_cpp_build.py::test_outside_consumer_builds_against_installed_package",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        test = item.nodeid.split("[")[0]
        return next((i for i, name in enumerate(RUN_FIRST) if test.endswith(name)), len(RUN_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
