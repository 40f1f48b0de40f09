"""AOTInductor packaging: the GPU backend's (and its CPU test double's) program format.

One .pt2 package holds one AOTInductor model per method, each named after its method, so a
runner calls methods by name as it does on ExecuTorch. What ExecuTorch keeps inside the
program travels in every model's metadata (string to string, read by libvoxtral's AOTI
backend through AOTIModelPackageLoader::get_metadata):

    voxtral.methods    the package's method names, comma-separated
    voxtral.constants  JSON {name: number}: the metadata ExecuTorch serves as constant methods
    voxtral.inputs     JSON [{"dtype", "shape"}]: the method's own inputs (a shape entry is
                       null where the size is dynamic), checked by the backend before a run:
                       AOTInductor itself checks nothing unless AOTI_RUNTIME_CHECK_INPUTS is set
    voxtral.state      JSON [{"name", "shape", "dtype"}]: the state tensors (KV caches, conv
                       context) this method takes after its own inputs, in order, and updates
                       in place. A name is one tensor for the whole program (the TTS prefill
                       and decode share the LM cache); each session owns its copy on the
                       device, so the loaded weights are shared by every session.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch

@dataclass(frozen=True)
class StateSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32", "bfloat16", "float16", "int64"

    def zeros(self, device: str = "cpu") -> torch.Tensor:
        return torch.zeros(self.shape, dtype=getattr(torch, self.dtype), device=device)

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def package_methods(
    methods: dict[str, torch.export.ExportedProgram],
    constants: dict[str, int | float],
    state: dict[str, list[StateSpec]],
    out_path: str | Path,
) -> int:
    """Compiles each exported method with AOTInductor into one package at `out_path`; returns
    its size in bytes. Each method's program takes its own inputs, then state[method]."""
    from torch._inductor.package import package_aoti

    # torch 2.11's package loader (on the GPU machine) takes the first model whose directory
    # starts with the name: 'prefill' ran 'prefill_text/' (torch 2.13 here matched exactly)
    for a in methods:
        for b in methods:
            if a != b and b.startswith(a):
                raise ValueError(f"method name '{b}' begins with '{a}', another method's name: "
                                 "AOTInductor's package loader would confuse them")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    names = ",".join(methods)
    compiled = {}
    for name, program in methods.items():
        metadata = {
            "voxtral.methods": names,
            "voxtral.constants": json.dumps(constants),
            "voxtral.state": json.dumps([s.as_json() for s in state.get(name, [])]),
            "voxtral.inputs": json.dumps(_input_specs(program, len(state.get(name, [])))),
        }
        args, kwargs = program.example_inputs
        with _dense_int4_inputs():
            compiled[name] = torch._inductor.aot_compile(
                program.module(), args, kwargs,
                options={"aot_inductor.package": True, "aot_inductor.metadata": metadata},
            )  # fmt: skip
    package_aoti(str(out_path), compiled)
    return out_path.stat().st_size


def _input_specs(program: torch.export.ExportedProgram, n_state: int) -> list[dict]:
    """dtype and shape of the program's own inputs (its user inputs less the trailing state),
    from the traced placeholders: a symbolic size (a dynamic dimension) is None."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user = [placeholders[name].meta["val"] for name in program.graph_signature.user_inputs]
    own = user[: len(user) - n_state]
    return [{"dtype": str(v.dtype).removeprefix("torch."),
             "shape": [d if isinstance(d, int) else None for d in v.shape]} for v in own]  # fmt: skip


@contextlib.contextmanager
def _dense_int4_inputs():
    """Inductor may lay the activation of an int4 matmul out column-major (following its
    producer's iteration order), which both kernels refuse: aten._weight_int4pack_mm_for_cpu
    ("expect A to be contiguous", torch 2.13's CPU lowering) and the CUDA
    aten._weight_int4pack_mm ("Expected A.is_contiguous()", torch 2.11 on the H200, for the
    encoder's first wq). Compiled as plain fallbacks whose inputs must be contiguous, they run."""
    from torch._inductor import lowering

    ops = (torch.ops.aten._weight_int4pack_mm_for_cpu.default, torch.ops.aten._weight_int4pack_mm.default)
    saved = {op: lowering.lowerings.pop(op, None) for op in ops}
    was_fallback = {op: op in lowering.fallbacks for op in ops}
    for op in ops:
        lowering.make_fallback(op, layout_constraint=lowering.require_contiguous, warn=False)
    try:
        yield
    finally:
        for op in ops:
            lowering.lowerings.pop(op, None)
            if not was_fallback[op]:
                lowering.fallbacks.discard(op)
            if saved[op] is not None:
                lowering.lowerings[op] = saved[op]


@dataclass
class MethodSpec:
    """What torch.export needs for one method: the module, example inputs, dynamic shapes
    (keyed by the forward's argument names)."""

    module: torch.nn.Module
    args: tuple
    dynamic_shapes: dict | None = None


class _StateAsInputs(torch.nn.Module):
    """Runs `inner` with the given state tensors standing in for its mutable buffers, so the
    traced program takes them as inputs and updates them in place (a session's own tensors)."""

    def __init__(self, inner: torch.nn.Module, owners: list[tuple[torch.nn.Module, str]]):
        super().__init__()
        self.inner = inner
        self._owners = owners  # (module, attribute name) of each state tensor, in input order

    def forward(self, inputs: tuple, states: tuple):
        for (module, leaf), tensor in zip(self._owners, states):
            module.__dict__[leaf] = tensor  # found before nn.Module.__getattr__ looks at buffers
        return self.inner(*inputs)


def _owner(root: torch.nn.Module, fqn: str) -> tuple[torch.nn.Module, str]:
    path, _, leaf = fqn.rpartition(".")
    return (root.get_submodule(path) if path else root), leaf


def _buffers_read(program: torch.export.ExportedProgram, among: set[str]) -> list[str]:
    """The buffers in `among` that the program's graph uses (export lifts every buffer of the
    module tree as an input, also those only another method touches)."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    return [fqn for node_name, fqn in program.graph_signature.inputs_to_buffers.items()
            if fqn in among and placeholders[node_name].users]  # fmt: skip


def export_with_state(specs: dict[str, MethodSpec]) -> tuple[dict[str, torch.export.ExportedProgram],
                                                               dict[str, list[StateSpec]]]:  # fmt: skip
    """Exports each method with its mutable buffers (KV caches, conv context) as trailing
    inputs instead of program state: AOTInductor keeps buffers inside the loaded model, which
    would make every stream share one cache. State is whatever buffer any method updates;
    a method takes each such buffer it reads or writes, named by its path in the module tree
    (the methods wrap one model, so one name is one tensor across methods)."""
    with torch.no_grad():
        first = {name: torch.export.export(s.module, s.args, dynamic_shapes=s.dynamic_shapes)
                 for name, s in specs.items()}  # fmt: skip
    # torch.export keeps in-place updates as graph ops; functionalizing them (an empty
    # decomposition table) lists the buffers they write.
    first = {name: ep.run_decompositions({}) for name, ep in first.items()}
    mutated = {fqn for ep in first.values() for fqn in ep.graph_signature.buffers_to_mutate.values()}
    used = {name: _buffers_read(ep, mutated) for name, ep in first.items()}
    del first
    tensors: dict[str, torch.Tensor] = {}
    for name, spec in specs.items():
        for fqn in used[name]:
            if fqn not in tensors:
                module, leaf = _owner(spec.module, fqn)
                tensors[fqn] = module._buffers.pop(leaf)
    programs, state = {}, {}
    for name, spec in specs.items():
        owners = [_owner(spec.module, fqn) for fqn in used[name]]
        arg_names = list(inspect.signature(spec.module.forward).parameters)
        dyn = spec.dynamic_shapes or {}
        dynamic = {"inputs": tuple(dyn.get(a) for a in arg_names[: len(spec.args)]),
                   "states": tuple(None for _ in owners)}  # fmt: skip
        example_states = tuple(torch.zeros_like(tensors[fqn]) for fqn in used[name])
        with torch.no_grad():
            programs[name] = torch.export.export(_StateAsInputs(spec.module, owners), (tuple(spec.args), example_states),
                                                 dynamic_shapes=dynamic)  # fmt: skip
        state[name] = [StateSpec(fqn, tuple(tensors[fqn].shape), str(tensors[fqn].dtype).removeprefix("torch."))
                       for fqn in used[name]]  # fmt: skip
    return programs, state
