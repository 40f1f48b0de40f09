"""The `_core.pyi` stub is held against the compiled module: every public class and member
the module has is declared in the stub, and the stub declares nothing the module lacks."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import voxtral_native

STUB = Path(voxtral_native.__file__).parent / "_core.pyi"


def _stub_names() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    names: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[""].add(node.name)
            names[node.name] = {
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")
            } | {t.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(t := n.target, ast.Name)}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[""].add(node.name)
    return names


def _module_names() -> dict[str, set[str]]:
    core = voxtral_native.native()
    names: dict[str, set[str]] = {"": set()}
    for name, obj in vars(core).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue  # exceptions come from voxtral_native.errors
            names[""].add(name)
            names[name] = {m for m in vars(obj) if not m.startswith("_")}
        elif callable(obj):
            names[""].add(name)
    return names


def test_stub_matches_the_compiled_module():
    stub, module = _stub_names(), _module_names()
    assert module[""] - stub[""] == set(), "in the module, missing from _core.pyi"
    for cls in module[""] & set(module):
        assert module[cls] - stub.get(cls, set()) == set(), f"{cls}: members missing from _core.pyi"
        assert stub.get(cls, set()) - module[cls] == set(), f"{cls}: _core.pyi declares members the module lacks"
