"""Loading Mistral-format checkpoint directories (params.json, consolidated.safetensors,
tekken.json) into the model definitions.

The model is built on the meta device and each tensor is read from the memory-mapped
safetensors file straight into its parameter, converted to the requested dtype: the
full-size bf16 checkpoint never exists twice in memory. Every mismatch between the file
and params.json is an error that names the file and the tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from voxtral_native.errors import InvalidModelError
from voxtral_native.export.config import SttConfig
from voxtral_native.export.models.stt import VoxtralRealtime

WEIGHTS_FILE = "consolidated.safetensors"
REQUIRED_FILES = ("params.json", WEIGHTS_FILE, "tekken.json")


class CheckpointError(InvalidModelError):
    """The checkpoint directory is unreadable or does not match what params.json describes."""


def check_checkpoint_dir(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not a Mistral checkpoint directory: missing {', '.join(missing)}")
    return path


def load_state_into(
    model: nn.Module,
    weights: Path,
    dtype: torch.dtype,
    on_module_loaded: Callable[[str, nn.Module], None] | None = None,
    uninitialized_state: bool = False,
) -> None:
    """Assigns every parameter of `model` (built on the meta device) from `weights`.

    Non-persistent buffers (caches, conv state) are created as zeros of `dtype`, or filled
    with the value a module names in its `buffer_fill` (RMSNorm's row of ones).
    `uninitialized_state`: the state buffers (those without a fill) are allocated and never
    written, for ExecuTorch exports: tracing and lowering read only their shapes, the runtime
    plans its own, and the programs never read state they have not written (a test fills it
    with NaN); so the pages are never touched and cost no memory (2.2 GB of ring KV caches in
    a full speech-to-text export). Never for a model that is run eagerly.
    `on_module_loaded(name, module)` runs after each top-level block (e.g. `layers.3`) is
    complete, so callers can quantize it before the next one is read.
    """
    from safetensors import SafetensorError

    try:
        _load_tensors(model, weights, dtype, on_module_loaded, uninitialized_state)
    except SafetensorError as e:  # truncated, corrupt or not a safetensors file at all
        raise CheckpointError(f"{weights} is not a readable safetensors file ({e}); download it again") from None


def _load_tensors(model, weights, dtype, on_module_loaded, uninitialized_state: bool) -> None:
    from safetensors import safe_open

    expected = dict(model.named_parameters())
    with safe_open(str(weights), framework="pt") as f:
        keys = set(f.keys())
        missing = sorted(set(expected) - keys)
        unexpected = sorted(keys - set(expected))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} tensor(s): {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
            if unexpected:
                parts.append(f"unexpected {len(unexpected)} tensor(s): {', '.join(unexpected[:5])}"
                             + (" ..." if len(unexpected) > 5 else ""))
            raise CheckpointError(f"{weights}: " + "; ".join(parts))

        for name, param in expected.items():
            shape = tuple(f.get_slice(name).get_shape())
            if shape != tuple(param.shape):
                raise CheckpointError(
                    f"{weights}: tensor '{name}' has shape {list(shape)}, params.json implies {list(param.shape)}"
                )

    # The file is opened again for each block: safetensors maps it, and the pages a block read
    # stay resident (and in the process's RSS, 7 GB of a full-size export's 23 GB peak) until
    # the map is closed.
    for block_name, block in _blocks_in_load_order(model):
        prefix = f"{block_name}." if block_name else ""
        with safe_open(str(weights), framework="pt") as f:
            for local, param in list(block.named_parameters(recurse=True)):
                full = prefix + local
                if full not in expected or not param.is_meta:
                    continue
                tensor = f.get_tensor(full).to(dtype)
                _set_param(block, local, nn.Parameter(tensor, requires_grad=False))
        _materialize_buffers(block, dtype, uninitialized_state)
        if on_module_loaded is not None:
            on_module_loaded(block_name, block)


def _blocks_in_load_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Each element of a ModuleList is its own block; everything else comes last as one."""
    blocks: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            blocks.extend((f"{name}.{i}", child) for i, child in enumerate(module))
    blocks.append(("", model))
    return blocks


def _set_param(root: nn.Module, dotted: str, value: nn.Parameter) -> None:
    owner_path, _, leaf = dotted.rpartition(".")
    owner = root.get_submodule(owner_path) if owner_path else root
    setattr(owner, leaf, value)


def _uninitialized(shape, dtype: torch.dtype) -> torch.Tensor:
    """Allocated, never written: the pages stay untouched until the program would write them."""
    return torch.empty(shape, dtype=dtype)


def _materialize_buffers(module: nn.Module, dtype: torch.dtype, uninitialized_state: bool) -> None:
    for owner in module.modules():
        for name, buf in list(owner.named_buffers(recurse=False)):
            if buf is not None and buf.is_meta:
                fills = getattr(owner, "buffer_fill", {})
                if uninitialized_state and name not in fills:
                    value = _uninitialized(buf.shape, dtype)
                else:
                    value = torch.full(buf.shape, fills.get(name, 0.0), dtype=dtype)
                owner.register_buffer(name, value, persistent=False)


def load_stt(
    checkpoint_dir: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    max_encoder_tokens: int = 64,
    max_decoder_tokens: int = 64,
    on_module_loaded: Callable[[str, nn.Module], None] | None = None,
    uninitialized_state: bool = False,
) -> VoxtralRealtime:
    """Voxtral Realtime from a Mistral checkpoint directory, in eval mode, no grads.
    `uninitialized_state`: as in load_state_into (ExecuTorch exports only)."""
    path = check_checkpoint_dir(checkpoint_dir)
    config = SttConfig.from_file(path / "params.json")
    with torch.device("meta"):
        model = VoxtralRealtime(config, max_encoder_tokens=max_encoder_tokens, max_decoder_tokens=max_decoder_tokens)

    def after_block(name: str, block: nn.Module) -> None:
        if name == "":  # the root block comes last: re-tie the head to the loaded table
            model.tie_weights()
        if on_module_loaded is not None:
            on_module_loaded(name, block)

    load_state_into(model, path / WEIGHTS_FILE, dtype, after_block, uninitialized_state)
    return model.eval().requires_grad_(False)
