"""The installed package: import without torch, native core, errors, Program, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import voxtral_native
from voxtral_native import errors

DATA = Path(__file__).parents[1] / "data"
TINY_PROGRAM = DATA / "tiny_linear.pte"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_inference_import_does_not_import_torch():
    r = run_python(
        "import sys, voxtral_native; voxtral_native.native(); import voxtral_native.cli;"
        "print('torch' in sys.modules, 'executorch.exir' in sys.modules)"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_native_version_matches_package():
    assert voxtral_native.native().__version__ == voxtral_native.__version__


@pytest.mark.parametrize(
    ("code", "cls", "builtin"),
    [
        ("InvalidArgument", errors.InvalidArgumentError, ValueError),
        ("NotFound", errors.NotFoundError, FileNotFoundError),
        ("IoError", errors.VoxtralIOError, OSError),
        ("InvalidProgram", errors.InvalidModelError, ValueError),
        ("UnsupportedVersion", errors.UnsupportedVersionError, errors.InvalidModelError),
        ("FailedPrecondition", errors.StateError, RuntimeError),
        ("OutOfRange", errors.OutOfRangeError, IndexError),
        ("Internal", errors.BackendError, RuntimeError),
    ],
)
def test_every_native_error_code_becomes_its_exception(code, cls, builtin):
    with pytest.raises(cls, match="the message") as info:
        voxtral_native.native()._raise_status(code, "the message")
    assert isinstance(info.value, builtin)
    assert isinstance(info.value, errors.VoxtralError)


def test_program_loads_reads_constants_and_runs():
    p = voxtral_native.native().Program.load(str(TINY_PROGRAM))
    assert p.method_names() == ["format_version", "forward", "scale"]
    assert p.constant_int("format_version") == 1
    assert p.constant_double("scale") == 0.25
    x = np.array([[1, 2, 3, 4], [-1, 0.5, 0, 2]], dtype=np.float32)
    i = np.arange(4, dtype=np.float32)
    expected = x @ ((i[:, None] - i[None, :]) / 8).T + i / 4
    (y,) = p.run("forward", [x])
    assert y.dtype == np.float32 and y.shape == (2, 4)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    # float64 and lists are converted; the answer is the same.
    np.testing.assert_allclose(p.run("forward", [x.astype(np.float64).tolist()])[0], expected, atol=1e-6)


def test_program_errors_are_exceptions_not_crashes(tmp_path):
    core = voxtral_native.native()
    with pytest.raises(FileNotFoundError, match="missing.pte"):
        core.Program.load(str(tmp_path / "missing.pte"))
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(errors.InvalidModelError, match="garbage.pte"):
        core.Program.load(str(garbage))
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes(TINY_PROGRAM.read_bytes()[:1000])
    with pytest.raises(errors.VoxtralError):
        core.Program.load(str(truncated))

    p = core.Program.load(str(TINY_PROGRAM))
    with pytest.raises(errors.NotFoundError, match="no method 'nope'"):
        p.run("nope", [])
    with pytest.raises(errors.NotFoundError, match="no method 'nope'"):
        p.planned_memory_bytes("nope")
    assert p.planned_memory_bytes("forward") > 0
    with pytest.raises(errors.InvalidArgumentError, match="takes 1 inputs, got 0"):
        p.run("forward", [])
    with pytest.raises(errors.InvalidArgumentError):
        p.run("forward", [np.zeros((3, 4), np.float32)])
    with pytest.raises(errors.InvalidModelError, match="not an integer"):
        p.constant_int("scale")
    with pytest.raises(errors.NotFoundError):
        p.constant_double("nope")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxtral_native", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_version_and_help():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"voxtral-native {voxtral_native.__version__}"
    r = cli("--help")
    assert r.returncode == 0 and "make-checkpoint" in r.stdout
    r = cli("make-checkpoint", "--help")
    assert r.returncode == 0 and "--size" in r.stdout and "--seed" in r.stdout
    r = cli("make-checkpoint", "xyz", "out")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_reports_errors_without_traceback(tmp_path):
    (tmp_path / "params.json").write_text("{}")
    r = cli("make-checkpoint", "stt", str(tmp_path))
    assert r.returncode == 2
    assert "error:" in r.stderr and "Traceback" not in r.stderr


def test_cmake_dir_points_at_installed_package():
    path = Path(voxtral_native.cmake_dir())
    assert (path / "voxtralConfig.cmake").is_file()
    assert cli("--cmake-dir").stdout.strip() == str(path)


def test_the_development_install_names_the_build_requirements():
    """README's and CI's first install line (pip's build isolation off) must install what
    pyproject.toml's [build-system] requires, at the same versions."""
    import re
    import tomllib

    root = Path(__file__).parents[2]
    requires = tomllib.loads((root / "pyproject.toml").read_text())["build-system"]["requires"]
    names = {re.split(r"[<>=!~ ]", r)[0] for r in requires}
    pinned = {r for r in requires if "==" in r}  # a range is met by any version pip picks
    for doc in ("README.md", ".ci/run"):
        line = next(ln for ln in (root / doc).read_text().splitlines()
                    if ln.startswith("pip install") and "scikit-build-core" in ln)
        words = set(line.split("#")[0].split()[2:])
        assert names <= {re.split(r"[<>=!~ ]", w)[0] for w in words}, (doc, line)
        assert pinned <= words, (doc, line)
