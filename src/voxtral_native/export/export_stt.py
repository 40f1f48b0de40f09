"""Export Voxtral Realtime from a Mistral checkpoint directory to an artifact directory:

    model.pte      methods `encode` and `decode` + metadata constant methods
    tekken.json    the checkpoint's tokenizer, copied
    manifest.json  the artifact index (artifact.py): format version, kind "stt", backend,
                   files, options; and, for people, the quantization and the metadata

Methods (B = 1; n audio tokens of 80 ms; T decoder positions):
    encode(mel [1, n_mels, 8n] f32, start_token [1] i64) -> audio_embeds [1, n, dim] f32
        continues the audio stream at token `start_token` (0 starts a new stream);
        1 <= n <= max_encoder_tokens.
    decode(audio_embeds [1, T, dim] f32, token_ids [1, T] i64, start_pos [1] i64,
           delay_tokens [1] f32) -> (logits [1, vocab] f32, tokens [1, T] i64)
        decoder positions start_pos..start_pos+T-1; logits of the last one, and the greedy
        token of each (the last is the next token; max_verify_tokens = max_decoder_tokens);
        1 <= T <= max_decoder_tokens. The delay is a run-time input, not baked in.
        AOTI packages return (tokens,) alone: the argmax stays on the device.
Both keep their state (conv context, ring KV caches) inside the program (AOTI: in state
tensors each session owns, export/aoti.py).
"""

from __future__ import annotations


import contextlib
import copy
import ctypes
import gc
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from voxtral_native.artifact import write_manifest
from voxtral_native.export import ops
from voxtral_native.export.aoti import MethodSpec
from voxtral_native.export.checkpoint import check_checkpoint_dir, load_stt
from voxtral_native.export.metadata import stt_metadata, tekken_audio_settings
from voxtral_native.export.models.stt import VoxtralRealtime
from voxtral_native.export.quantize import EMBEDDING_SCHEMES, QuantScheme, quantizer

# ExecuTorch programs (model.pte): xnnpack (linears delegated to XNNPACK) and portable (no
# delegate). AOTInductor packages (model.pt2, export/aoti.py) for libvoxtral's AOTI backend:
# cuda, metal (Apple GPUs, untested here) and aoti-cpu (the same seam on the CPU, for tests).
EXECUTORCH_BACKENDS = ("xnnpack", "portable")
AOTI_DEVICES = {"cuda": "cuda", "metal": "mps", "aoti-cpu": "cpu"}
BACKENDS = EXECUTORCH_BACKENDS + tuple(AOTI_DEVICES)
# Compute dtypes: weights that are not quantized, activations and KV caches. The program's
# inputs and outputs stay float32 whatever the compute dtype (cast at its edges), so runners
# need no conversion.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PROGRAM_FILE = "model.pte"
AOTI_PROGRAM_FILE = "model.pt2"


def check_aoti_options(backend: str, schemes: dict) -> None:
    """What the AOTI export takes: linears 4w (PyTorch's tinygemm int4 kernels, group 32, 64,
    128 or 256) or 8w (dequantized in the graph); no 8da schemes (XNNPACK's) and no quantized
    embedding tables (ExecuTorch's kernels)."""
    if backend not in AOTI_DEVICES:
        return
    for part, scheme in schemes.items():
        if scheme is None:
            continue
        if part == "embedding":
            raise ValueError(f"--backend {backend} keeps the token table in the compute dtype; drop --embedding-quant")
        if scheme.name.startswith("8da"):
            raise ValueError(f"--backend {backend} takes 4w or 8w linears ({scheme.name} is XNNPACK's); "
                             f"change the quantization of the {part}")  # fmt: skip
        if scheme.name == "4w" and scheme.group_size not in (32, 64, 128, 256):
            raise ValueError(f"--backend {backend}: 4w needs a group size of 32, 64, 128 or 256 (PyTorch's int4 "
                             f"kernels), not {scheme.group_size}")  # fmt: skip


@dataclass
class SttExportOptions:
    backend: str = "xnnpack"  # xnnpack: linears delegated to XNNPACK; portable: no delegate
    quant: str | None = None  # decoder linears (+ output head): 4w, 8w, 8da4w, 8da8w[:group]
    encoder_quant: str | None = None  # encoder linears (+ adapter)
    embedding_quant: str | None = None  # token table: 4w, 8w[:group]
    dtype: str = "fp32"  # compute dtype (DTYPES): fp32, bf16, fp16
    max_encoder_tokens: int = 32  # audio tokens per encode call (offline batching: 2.56 s)
    max_decoder_tokens: int = 64  # positions per decode call (the prompt prefill: <= 1 + 32 + 30)
    schemes: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend '{self.backend}' (expected one of {', '.join(BACKENDS)})")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype '{self.dtype}' (expected one of {', '.join(DTYPES)})")
        for name in ("max_encoder_tokens", "max_decoder_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for flag, text in (("--quant", self.quant), ("--encoder-quant", self.encoder_quant)):
            if text and self.dtype == "bf16" and QuantScheme.parse(text).name.startswith("8da"):
                raise ValueError(
                    f"{flag} {text} needs float32 or float16 activations: XNNPACK's dynamically quantized "
                    "linears have no bf16 form (use --dtype fp16 or fp32, or weight-only 4w / 8w with bf16)"
                )
        self.schemes = {
            "decoder": QuantScheme.parse(self.quant) if self.quant else None,
            "encoder": QuantScheme.parse(self.encoder_quant) if self.encoder_quant else None,
            "embedding": QuantScheme.parse(self.embedding_quant, EMBEDDING_SCHEMES) if self.embedding_quant else None,
        }
        check_aoti_options(self.backend, self.schemes)


class _Encode(nn.Module):
    def __init__(self, model: VoxtralRealtime, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, mel: torch.Tensor, start_token: torch.Tensor) -> torch.Tensor:
        return self.model.encode(mel.to(self.dtype), start_token).float()


class _Decode(nn.Module):
    """`token_only`: return just the greedy token (AOTI: the argmax runs on the device, so no
    logits cross to the host per step)."""

    def __init__(self, model: VoxtralRealtime, dtype: torch.dtype, token_only: bool = False):
        super().__init__()
        self.model, self.dtype, self.token_only = model, dtype, token_only

    def forward(self, audio_embeds, token_ids, start_pos, delay_tokens):
        x = audio_embeds.to(self.dtype)
        # the greedy token of every position (the runner's speculative calls check their
        # guesses against them), logits of the last. The output head runs on all T rows: a
        # step (T = 1) costs what it did; the prompt's prefill (T = 39) pays its rows once.
        # (Heading only the last min(T, 8) rows does not export: x[:, -8:] on a dynamic T
        # makes torch.export guard T <= 7.)
        logits = self.model.decode(x, token_ids, start_pos, delay_tokens)  # [1, T, V], compute dtype
        tokens = torch.argmax(logits, dim=-1)  # [1, T] (widening first would change no argmax)
        return (tokens,) if self.token_only else (logits[:, -1].float(), tokens)


def method_specs(model: VoxtralRealtime, options: SttExportOptions) -> dict[str, MethodSpec]:
    cfg = model.config
    mel_frames = 2 * cfg.downsample_factor
    n = torch.export.Dim("n_tokens", min=1, max=options.max_encoder_tokens)
    t = torch.export.Dim("n_positions", min=1, max=options.max_decoder_tokens)
    dim = cfg.decoder.dim
    return {
        "encode": MethodSpec(
            _Encode(model, DTYPES[options.dtype]),
            (torch.zeros(1, cfg.num_mel_bins, 2 * mel_frames), torch.zeros(1, dtype=torch.long)),
            {"mel": {2: mel_frames * n}, "start_token": None},
        ),
        "decode": MethodSpec(
            _Decode(model, DTYPES[options.dtype], token_only=options.backend in AOTI_DEVICES),
            (torch.zeros(1, 2, dim), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long),
             torch.zeros(1)),
            {"audio_embeds": {1: t}, "token_ids": {1: t}, "start_pos": None, "delay_tokens": None},
        ),
    }  # fmt: skip


def export_methods(specs: dict[str, MethodSpec]) -> dict[str, torch.export.ExportedProgram]:
    with torch.no_grad():
        return {name: torch.export.export(s.module, s.args, dynamic_shapes=s.dynamic_shapes)
                for name, s in specs.items()}  # fmt: skip


def write_program(specs: dict[str, MethodSpec], metadata: dict, backend: str, out_dir: Path,
                  share_mutable_buffers: bool = False) -> tuple[Path, int]:  # fmt: skip
    """Traces and compiles the methods for `backend`; returns (program path, size in bytes).
    An ExecuTorch export empties `specs` once they are traced."""
    if backend in AOTI_DEVICES:
        from voxtral_native.export.aoti import export_with_state, package_methods

        device = AOTI_DEVICES[backend]
        for spec in specs.values():  # the model is on the device already (export_stt / export_tts)
            spec.args = tuple(a.to(device) for a in spec.args)
        with ops.decomposed():
            programs, state = export_with_state(specs)
            path = out_dir / AOTI_PROGRAM_FILE
            return path, package_methods(programs, metadata, state, path)
    path = out_dir / PROGRAM_FILE
    release_freed_memory()  # the loading's and quantization's temporaries
    methods = export_methods(specs)
    specs.clear()  # the traced programs hold what they need; nothing else keeps the eager modules
    return path, lower(methods, metadata, backend, path, share_mutable_buffers)


def _memory_planning_pass(share_mutable_buffers: bool = False):
    """ExecuTorch's memory planning, minus a second copy of every mutated buffer.

    `share_mutable_buffers`: a buffer of the same name is one allocation for every method
    (ExecuTorch's shared state, arena 2; the runtime loads the program with shared memory
    arenas), e.g. the LM cache that both TTS prefill and decode write.

    In executorch 1.5.1 a buffer updated in place (the ring KV caches, the conv context) is
    planned twice: once as the buffer, and once more for the graph output that returns it,
    because the output node keeps its own spec of the in-place update while the planner
    aliases only the update node itself onto the buffer. Nothing is ever written to that
    second slot, but the runtime allocates and zero-fills it when a method loads: the full
    model's sessions cost twice their KV caches (4.4 GB instead of 2.2). This points such
    outputs at their buffer's spec before planning.
    """
    from executorch.exir.operator.convert import is_inplace_variant
    from executorch.exir.passes import MemoryPlanningPass
    from torch.fx import Node

    def in_place(node) -> bool:
        schema = getattr(node.target, "_schema", None)
        return node.op == "call_function" and schema is not None and is_inplace_variant(schema.name, schema.overload_name)

    class BuffersPlannedOnce(MemoryPlanningPass):
        def run(self, graph_module, graph_signature=None):
            output = graph_module.graph.output_node()
            specs = output.meta.get("spec")
            values = output.args[0]
            if isinstance(specs, (list, tuple)) and isinstance(values, (list, tuple)) and len(specs) == len(values):
                aliased = list(specs)
                for i, value in enumerate(values):
                    root = value
                    while isinstance(root, Node) and in_place(root):
                        root = root.args[0]  # in-place ops mutate their first argument
                    if root is not value and isinstance(root, Node) and root.op == "placeholder":
                        aliased[i] = root.meta["spec"]
                output.meta["spec"] = type(specs)(aliased)
            return super().run(graph_module, graph_signature)

    return BuffersPlannedOnce(share_mutable_buffers=share_mutable_buffers)


def _share_named_data(program: torch.export.ExportedProgram, named_data: dict) -> None:
    """Makes each key of XNNPACK's named data one bytes object across the program's methods.

    XNNPACK keys each weight's bytes by their sha256, and methods over one model (the TTS
    prefill, text_prefill and decode) each carry their own copy of the same LM bytes until
    serialization merges the keys. `named_data` (key -> bytes, shared across the methods of
    one program) keeps the first copy and lets the others go as each method is lowered.
    """
    from executorch.exir.lowered_backend_module import LoweredBackendModule

    for module in program.graph_module.modules():
        if isinstance(module, LoweredBackendModule) and module.named_data_store_output is not None:
            out = module.named_data_store_output
            for key, entry in out.pte_data.items():
                out.buffers[entry.buffer_index] = named_data.setdefault(key, out.buffers[entry.buffer_index])


@contextlib.contextmanager
def _preprocess_copies_share_weights() -> Iterator[None]:
    """XNNPACK's preprocess gets copies of the partitions' programs that share their weights.

    ExecuTorch deep-copies every partition's program before a backend's preprocess
    (`BackendDetails.copy_exported_program_for_preprocess`) and holds all of a method's
    copies until it is lowered: for the decoder, one program holding all its weights, a
    second 3 GB of int8 data at the export's peak. XNNPACK's preprocess rewrites the graph
    and reads the weights into its own buffers; it never writes into a weight tensor, so
    the copies keep their own graph and state dict but point at the same tensors (what
    ExecuTorch's CUDA backend does in its low-memory mode). The program is byte-identical.
    """
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend

    def copy_sharing_tensors(cls, edge_program, compile_specs):
        memo = {id(t): t for values in (edge_program.state_dict, edge_program.constants)
                for t in values.values() if isinstance(t, torch.Tensor)}  # fmt: skip
        return copy.deepcopy(edge_program, memo)

    name = "copy_exported_program_for_preprocess"
    own = XnnpackBackend.__dict__.get(name)
    setattr(XnnpackBackend, name, classmethod(copy_sharing_tensors))
    try:
        yield
    finally:
        if own is None:
            delattr(XnnpackBackend, name)
        else:
            setattr(XnnpackBackend, name, own)


@contextlib.contextmanager
def _xnnpack_skips_passes_without_targets() -> Iterator[None]:
    """XNNPACK's preprocess skips the graph passes that have nothing to rewrite in a partition.

    Each partition goes through 17 passes, each of them a full retrace of the partition's
    graph (a 6 + 8-layer full-width speech-to-text export: 8 s a pass, 139 s in all; the
    full text-to-speech export on a Zen 3: ~30 s a pass). Eleven of them rewrite only ops
    that most partitions lack: batch norm (two passes), PReLU, bilinear upsampling, constant
    padding, 1-D convolution, [add/b]mm (into linear), the SDPA subgraph, relu or hardtanh
    after a fusable op, a cat of more than 5 inputs, max pooling's getitem. Each is dropped
    from a partition that has none of the ops it matches (in executorch 1.5.1; the upsampling
    and SDPA passes' own patterns are read), and no pass that runs before them creates those
    ops. Three passes that always run (metadata, channels-last, redundant copies) retrace
    the graph last either way. The program is the same byte for byte (test_stt_export
    checks it).
    """
    from executorch.backends.xnnpack import _passes
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa
    from executorch.exir.dialects._ops import ops as exir_ops

    edge = exir_ops.edge.aten
    batch_norm = {edge.native_batch_norm.default, edge._native_batch_norm_legit_no_training.default}

    def op_sets(graphs) -> list[set]:  # a pattern matches only where all of its ops are
        return [{n.target for n in g.graph.nodes if n.op == "call_function"} for g in graphs]

    upsample_patterns, sdpa_patterns = op_sets(bilinear_2d.get_graphs_dict()), op_sets(sdpa.get_graphs())
    to_linear = set(_passes.ConvertToLinearPass.targets)  # mm, addmm, bmm
    activations = set(_passes.FuseActivationPass.FUSEABLE_ACTIVATIONS)  # relu, hardtanh
    max_with_indices = {"aten.max_pool2d_with_indices.default", "aten.max.dim"}  # matched by name there
    gates = {  # pass -> does a partition with these op targets need it
        _passes.FuseBatchNormPass: lambda targets: bool(batch_norm & targets),
        _passes.DecomposeBatchNorm: lambda targets: bool(batch_norm & targets),
        _passes.PReLUReshapePass: lambda targets: edge._prelu_kernel.default in targets,
        _passes.ConvertToUpsampleBilinear2d: lambda targets: any(p <= targets for p in upsample_patterns),
        _passes.InsertPadQDQPass: lambda targets: edge.constant_pad_nd.default in targets,
        _passes.Conv1dUnsqueezePass: lambda targets: edge.convolution.default in targets,
        _passes.ConvertToLinearPass: lambda targets: bool(to_linear & targets),
        _passes.ConvertToSDPAPass: lambda targets: any(p <= targets for p in sdpa_patterns),
        _passes.FuseActivationPass: lambda targets: bool(activations & targets),
        _passes.DecomposeConcatenate: lambda targets: edge.cat.default in targets,
        _passes.RemoveGetItemPass: lambda targets: any(getattr(t, "__name__", "") in max_with_indices for t in targets),
    }
    manager = _passes.XNNPACKPassManager
    own_init = manager.__init__

    def init_with_gates(self, exported_program, passes=None):
        own_init(self, exported_program, passes)
        targets = {node.target for node in exported_program.graph.nodes if node.op == "call_function"}
        self.passes = [p for p in self.passes if p not in gates or gates[p](targets)]

    manager.__init__ = init_with_gates
    try:
        yield
    finally:
        manager.__init__ = own_init


def release_freed_memory() -> None:
    """Collects garbage and hands the C heap's free pages back to the system (glibc).

    Loading and quantizing leave gigabytes of freed temporaries in glibc's heap (blocks
    below its mmap threshold, which rises to 32 MB as tensors are freed): free to Python
    but still resident, they would add to the peak of the lowering that follows.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def releasing_after(hook: Callable[[str, nn.Module], None]) -> Callable[[str, nn.Module], None]:
    """A loader hook (quantize each block as it is read) that then returns to the system what
    the block's bf16 -> float32 -> quantized conversion freed, so the load's resident size
    stays near what the model holds (full speech-to-text: 7.85 GB at most, was 10.2)."""

    def after(name: str, block: nn.Module) -> None:
        hook(name, block)
        release_freed_memory()

    return after


def lower(methods: dict, metadata: dict, backend: str, out_path: Path, share_mutable_buffers: bool = False) -> int:
    """Lowers the traced `methods` and writes the program to `out_path`; returns its size.

    Memory: `methods` is emptied as its programs are lowered, one at a time (callers drop the
    eager model first), so each traced program's weights can be freed once in its delegate, and the
    program is written from ExecuTorch's non-contiguous buffers (`write_to_file`) instead of
    joined into one bytes object first: each saves a copy of the program's size.
    """
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower

    partitioners: list = []
    if backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        # One partitioner for every op it supports, dynamically quantized linears included:
        # each run of supported ops between two ops XNNPACK does not take (voxtral::ring_sdpa,
        # the cache updates) is one delegate. Running XnnpackDynamicallyQuantizedPartitioner
        # first, as ExecuTorch's LLM examples do, gave each group of quantized linears a
        # delegate of its own and the ops between them others: 768 delegates in the full
        # speech-to-text program instead of 179, the same outputs bit for bit, and a
        # partition preprocessed (17 graph passes) apiece at export
        # (benchmarks/results/export_time.md).
        partitioners = [XnnpackPartitioner()]
    # One method at a time, each traced program dropped once lowered: its weights then live
    # only in the delegate's blob, not twice over every method's lowering.
    from executorch.exir.program import EdgeProgramManager

    compile_config = EdgeCompileConfig(_check_ir_validity=False)  # voxtral:: ops are not core ATen
    lowered, named_data = {}, {}
    for name in list(methods):
        with _preprocess_copies_share_weights(), _xnnpack_skips_passes_without_targets():
            single = to_edge_transform_and_lower(
                {name: methods.pop(name)}, partitioner={name: partitioners}, compile_config=compile_config
            )
        lowered[name] = single.exported_program(name)
        _share_named_data(lowered[name], named_data)
        del single
        release_freed_memory()
    edge = EdgeProgramManager(lowered, constant_methods=metadata, compile_config=compile_config)
    del lowered, named_data
    # Reinplacing turns the functional cache updates back into in-place writes; quant
    # fusion turns dequantize + embedding into the quantized embedding kernels.
    config = ExecutorchBackendConfig(
        run_reinplace_pass=True,
        do_quant_fusion_and_const_prop=True,
        memory_planning_pass=_memory_planning_pass(share_mutable_buffers),
        emit_mutable_buffer_names=share_mutable_buffers,
    )
    program = edge.to_executorch(config)
    del edge
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as f:
        program.write_to_file(f)
    return out_path.stat().st_size


def export_stt(
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    options: SttExportOptions | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Exports the checkpoint to `out_dir` (created); returns the program path."""
    options = options or SttExportOptions()
    checkpoint_dir = check_checkpoint_dir(checkpoint_dir)
    out_dir = Path(out_dir)
    start = time.monotonic()

    def step(message: str) -> None:
        progress(f"[{time.monotonic() - start:7.1f}s] {message}")

    audio = tekken_audio_settings(checkpoint_dir / "tekken.json")
    step(f"loading {checkpoint_dir} (dtype {options.dtype}; quantization: "
         + ", ".join(f"{k} {v or 'none'}" for k, v in options.schemes.items()) + ")")
    s = options.schemes
    device = AOTI_DEVICES.get(options.backend)  # None: ExecuTorch
    model = load_stt(
        checkpoint_dir,
        dtype=DTYPES[options.dtype],
        max_encoder_tokens=options.max_encoder_tokens,
        max_decoder_tokens=options.max_decoder_tokens,
        on_module_loaded=releasing_after(
            quantizer(s["encoder"], s["decoder"], s["embedding"], tinygemm_device=device)
        ),
        uninitialized_state=device is None,  # ExecuTorch plans the caches itself: never touched here
    )
    if device is not None:
        model.to(device)  # AOTInductor compiles for the device of the traced tensors
    metadata = stt_metadata(
        model.config, audio, max_encoder_tokens=options.max_encoder_tokens,
        max_decoder_tokens=options.max_decoder_tokens, activations_bf16=False,
        max_verify_tokens=options.max_decoder_tokens,
    )  # fmt: skip
    step(f"tracing encode and decode (torch.export) and compiling for {options.backend}")
    specs = method_specs(model, options)
    del model  # the specs hold it; the traced programs hold what they need
    pte, program_bytes = write_program(specs, metadata, options.backend, out_dir)
    del specs
    shutil.copyfile(checkpoint_dir / "tekken.json", out_dir / "tekken.json")
    write_manifest(
        out_dir, "stt", options.backend, {"program": pte.name, "tokenizer": "tekken.json"},
        options={k: v for k, v in asdict(options).items() if k != "schemes"},
        model="Voxtral-Mini-4B-Realtime-2602",
        source_checkpoint=str(checkpoint_dir.resolve()),
        program_bytes=program_bytes,
        quantization={k: str(v) if v else None for k, v in s.items()},
        metadata=metadata,
        export_seconds=round(time.monotonic() - start, 1),
    )
    step(f"wrote {pte} ({program_bytes / 1e6:.1f} MB)")
    return pte
