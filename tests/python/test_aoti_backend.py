"""libvoxtral's AOTI backend (csrc/backends/aoti/) on a toy AOTInductor package made with
export/aoti.py's package_methods: a 'step' method that writes a state cache in place, a
'read' method that reads the same cache, a 'mix' method with bf16 edges and an int64 state
of its own, and two constants.

The default build (pip install -e .) has no aoti backend: there a .pt2 must be refused with
a clear error. The backend itself is tested through a second CMake build of the C++ tree
with -DVOXTRAL_BACKENDS=xnnpack;aoti (conftest's native_build) running
tests/cpp/test_aoti.cpp, whose outputs are held equal to torch's own loader of the package;
a _core built with aoti runs the same checks in Python."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import made_once

from voxtral_native import _core, errors

CONSTANTS = {"format_version": 1, "alpha": 1.5}


class Step(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))

    def forward(self, x, pos, cache):
        y = x @ self.w
        cache.index_copy_(0, pos, y)
        return cache.sum(0, keepdim=True), torch.argmax(y, -1)


class Read(torch.nn.Module):
    def forward(self, scale, cache):
        return (cache * scale,)


class Mix(torch.nn.Module):
    def forward(self, x, count):
        count.add_(1)
        return x * 2, count.clone(), x.to(torch.float16)


def x_of(k: int) -> np.ndarray:
    """tests/cpp/test_aoti.cpp's inputs: exactly representable, the same bits on both sides."""
    return ((np.arange(8) + k * 8) % 13 - 6).astype(np.float32).reshape(1, 8) / 4


def make_toy_package(path: Path) -> Path:
    from voxtral_native.export.aoti import StateSpec, package_methods

    cache, count = StateSpec("cache", (4, 8), "float32"), StateSpec("count", (1,), "int64")
    x = torch.from_numpy(x_of(0))
    methods = {
        "step": torch.export.export(Step(), (x, torch.tensor([1]), cache.zeros())),
        "read": torch.export.export(Read(), (torch.tensor([2.0]), cache.zeros())),
        "mix": torch.export.export(Mix(), (x.to(torch.bfloat16), count.zeros())),
    }
    package_methods(methods, CONSTANTS, {"step": [cache], "read": [cache], "mix": [count]}, path)
    return path


@pytest.fixture(scope="module")
def toy_package(tmp_path_factory, worker_id) -> Path:
    folder = made_once(tmp_path_factory, worker_id, "aoti-toy", lambda p: make_toy_package(p / "toy.pt2"))
    return folder / "toy.pt2"


def reference_scenario(package: Path) -> dict[str, list[np.ndarray]]:
    """test_aoti.cpp's scenario through torch's loader: Programs A and B are two sets of
    state tensors over the same models."""
    from torch._inductor.package import load_package

    step, read, mix = (load_package(str(package), name) for name in ("step", "read", "mix"))
    cache_a, cache_b = torch.zeros(4, 8), torch.zeros(4, 8)
    count_a = torch.zeros(1, dtype=torch.int64)
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for k in range(6):
            out[f"A.step.{k}"] = list(step(torch.from_numpy(x_of(k)), torch.tensor([k % 4]), cache_a))
        out["A.read"] = list(read(torch.tensor([2.0]), cache_a))
        out["B.step"] = list(step(torch.from_numpy(x_of(10)), torch.tensor([2]), cache_b))
        out["B.read"] = list(read(torch.tensor([1.0]), cache_b))
        for call in range(2):
            out[f"A.mix.{call}"] = list(mix(torch.from_numpy(x_of(3)).to(torch.bfloat16), count_a))
    # What libvoxtral hands out: float16 widened to float32; bf16 compared as float32 values.
    return {tag: [t.float().numpy() if t.dtype in (torch.float16, torch.bfloat16) else t.numpy() for t in ts]
            for tag, ts in out.items()}  # fmt: skip


def parse_outputs(stdout: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("OUT "):
            continue
        _, tag, index, dtype, shape, *values = line.split()
        dims = [int(d) for d in shape.split(",")] if shape else []
        array = np.array(values, dtype=np.int64 if dtype == "int64" else np.float64).reshape(dims)
        out.setdefault(tag, []).append((dtype, array))
        assert int(index) == len(out[tag]) - 1
    return out


EXPECTED_DTYPES = {"step": ["float32", "int64"], "read": ["float32"], "mix": ["bfloat16", "int64", "float32"]}


def test_backends_are_listed():
    built = _core.backends()
    assert built[0] == "xnnpack" and set(built) <= {"xnnpack", "aoti"}


def test_pt2_without_the_aoti_backend_is_a_clear_error(toy_package, tmp_path):
    if "aoti" in _core.backends():
        pytest.skip("this build runs AOTInductor packages")
    with pytest.raises(errors.InvalidModelError) as e:
        _core.Program.load(str(toy_package))
    message = str(e.value)
    assert "is an AOTInductor package (exported for aoti); this build has xnnpack" in message
    assert "-DVOXTRAL_BACKENDS=xnnpack;aoti" in message
    # The zip magic decides too: a package under another name is not taken for a .pte.
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(toy_package.read_bytes())
    with pytest.raises(errors.InvalidModelError, match="AOTInductor package"):
        _core.Program.load(str(renamed))


def test_cpp_aoti_backend_matches_torch_loader(native_build, toy_package):
    """The C++ checks (constants, methods, state per Program and shared by methods, bad
    calls, threads), then the scenario's outputs against torch's loader of the package."""
    exe = native_build / "tests" / "cpp" / "test_aoti"
    zip64 = toy_package.parent / "zip64.zip"
    if not zip64.exists():  # 70000 entries: past the classic directory's 65535, so zip64 records
        with zipfile.ZipFile(zip64.with_suffix(".part"), "w") as z:
            for i in range(70000):
                z.writestr(f"top/e{i}", b"")
        zip64.with_suffix(".part").rename(zip64)
    r = subprocess.run([str(exe), str(toy_package)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "VOXTRAL_TEST_ZIP64": str(zip64)})  # fmt: skip
    assert r.returncode == 0, f"test_aoti failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    got = parse_outputs(r.stdout)
    expected = reference_scenario(toy_package)
    assert got.keys() == expected.keys()
    for tag, outputs in expected.items():
        method = tag.split(".")[1]
        assert [dtype for dtype, _ in got[tag]] == EXPECTED_DTYPES[method], tag
        for (_, value), want in zip(got[tag], outputs, strict=True):
            assert value.shape == want.shape, tag
            np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6, err_msg=tag)


@pytest.mark.skipif("aoti" not in _core.backends(), reason="this build has no aoti backend")
def test_python_module_runs_the_package_like_torch(toy_package):
    p, q = _core.Program.load(str(toy_package)), _core.Program.load(str(toy_package))
    assert p.method_names() == ["alpha", "format_version", "mix", "read", "step"]
    assert p.constant_int("format_version") == 1 and p.constant_double("alpha") == 1.5
    assert p.planned_memory_bytes("step") == 4 * 8 * 4
    expected = reference_scenario(toy_package)
    for k in range(6):
        got = p.execute("step", [x_of(k), np.array([k % 4], dtype=np.int64)])
        for value, want in zip(got, expected[f"A.step.{k}"], strict=True):
            np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(p.run("read", [np.array([2.0], np.float32)])[0], expected["A.read"][0], rtol=1e-6)
    np.testing.assert_array_equal(q.run("read", [np.array([1.0], np.float32)])[0], np.zeros((4, 8)))  # its own state
    with pytest.raises(errors.InvalidArgumentError, match="takes 2 inputs, got 1"):
        p.execute("step", [x_of(0)])
    with pytest.raises(errors.InvalidArgumentError, match="int64"):
        p.execute("step", [x_of(0), np.array([0.0], np.float32)])
    with pytest.raises(errors.NotFoundError):
        p.execute("nope", [])
