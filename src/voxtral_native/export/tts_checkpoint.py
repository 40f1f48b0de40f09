"""Loading a Voxtral-4B-TTS-2603 Mistral-format directory into the model definitions.

The speech-to-text loader's machinery (export/checkpoint.py) does the reading: meta-device
model, one block at a time from the memory-mapped safetensors file, every missing /
unexpected / misshapen tensor a CheckpointError naming the file and the key. Module names
are the checkpoint keys, so loading is a lookup. What the TTS model adds:
- tensors are read in float32 and each block is cast to `dtype` once complete (the
  full-size checkpoint is never held in float32 at once); the codec's weight norms are
  folded before that cast, in float32 (g * v / |v| loses precision in bf16), and before
  `on_module_loaded` sees the block (which may quantize it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from voxtral_native.export.checkpoint import WEIGHTS_FILE, CheckpointError, check_checkpoint_dir, load_state_into
from voxtral_native.export.models.tts import VoxtralTts, fold_weight_norm
from voxtral_native.export.tts_config import TtsConfig

__all__ = ["CheckpointError", "load_tts"]

def load_tts(
    checkpoint_dir: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    max_positions: int = 4096,
    max_tokens: int = 512,
    on_module_loaded: Callable[[str, nn.Module], None] | None = None,
    uninitialized_state: bool = False,
) -> VoxtralTts:
    """Voxtral TTS from a Mistral checkpoint directory, in eval mode, no grads, weight norm
    folded. `max_positions` bounds the LM positions (its KV cache), `max_tokens` one LM call.
    `uninitialized_state`: as in checkpoint.load_state_into (ExecuTorch exports only)."""
    path = check_checkpoint_dir(checkpoint_dir)
    config = TtsConfig.from_file(path / "params.json")
    with torch.device("meta"):
        model = VoxtralTts(config, max_positions=max_positions, max_tokens=max_tokens)

    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    block_names = [f"{name}.{i}" for name, m in lists for i in range(len(m))]

    def after_block(name: str, block: nn.Module) -> None:
        fold_weight_norm(block)  # only the codec has weight-normed convs
        if name == "":  # the root comes last: cast what no block owns (embeddings, heads, output conv)
            for param_name, param in model.named_parameters():
                if not any(param_name.startswith(b + ".") for b in block_names):
                    param.data = param.data.to(dtype)
        else:
            block.to(dtype)
        if on_module_loaded is not None:
            on_module_loaded(name, block)

    # Read in float32 so the codec's weight norm folds in float32; each block is cast once complete.
    load_state_into(model, path / WEIGHTS_FILE, torch.float32, after_block, uninitialized_state)
    return model.eval().requires_grad_(False)
