"""Quantization recipes (torchao source transforms), applied before torch.export.

Linear layers: 4w / 8w (weight-only), 8da4w / 8da8w (int8 dynamic activations, int4 /
int8 weights), each with a group size (0 = one scale per output channel). Embedding
tables: 4w / 8w. torchao computes every quantization (scales by its HQQ scale search).
XNNPACK runs the 8da linears; weight-only linears become WeightOnlyLinear, run by
libvoxtral's voxtral::linear_wq kernel (ExecuTorch 1.5.1's XNNPACK lowering of weight-only
linears ignores their scales); the ExecuTorch quantized kernels (linked by libvoxtral)
run the quantized embedding lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

LINEAR_SCHEMES = ("4w", "8w", "8da4w", "8da8w")
EMBEDDING_SCHEMES = ("4w", "8w")


@dataclass(frozen=True)
class QuantScheme:
    """One recipe, e.g. QuantScheme.parse("8da4w") or "8da4w:128" (scheme:group_size)."""

    name: str
    group_size: int

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...] = LINEAR_SCHEMES) -> QuantScheme:
        name, _, group = text.partition(":")
        if name not in allowed:
            raise ValueError(f"unknown quantization scheme '{name}' (expected one of {', '.join(allowed)})")
        if group:
            if not group.isdigit():
                raise ValueError(f"group size in '{text}' must be a non-negative integer")
            group_size = int(group)
        else:
            group_size = 0 if name in ("8w", "8da8w") else 32  # int8 keeps per-channel scales
        if group_size and group_size % 2:
            raise ValueError(f"group size {group_size} in '{text}' must be even")
        return cls(name, group_size)

    def __str__(self) -> str:
        return f"{self.name}:{self.group_size}"

    def torchao_config(self):
        from torchao.quantization.granularity import PerAxis, PerGroup
        from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig

        granularity = PerGroup(self.group_size) if self.group_size else PerAxis(0)
        weight_dtype = torch.int4 if self.name.endswith("4w") else torch.int8
        if self.name.startswith("8da"):
            return Int8DynamicActivationIntxWeightConfig(
                weight_dtype=weight_dtype, weight_granularity=granularity, intx_choose_qparams_algorithm="hqq_scale_only"
            )
        return IntxWeightOnlyConfig(
            weight_dtype=weight_dtype, granularity=granularity, intx_choose_qparams_algorithm="hqq_scale_only"
        )


class WeightOnlyLinear(nn.Module):
    """A linear layer with symmetric int8 / int4 weights, run by voxtral::linear_wq.

    qweight: bits 8: [N, K] int8; bits 4: [N, K/2] uint8 (ops.pack_int4); scales:
    [N, K / group_size] float32; bias [N] or None. Built from a torchao-quantized nn.Linear.
    """

    def __init__(self, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, bits: int,
                 group_size: int):  # fmt: skip
        super().__init__()
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales", scales)
        self.register_buffer("bias", bias)
        self.bits, self.group_size = bits, group_size
        self.in_features = qweight.shape[1] * (2 if bits == 4 else 1)
        self.out_features = qweight.shape[0]

    @classmethod
    def from_torchao(cls, linear: nn.Linear) -> WeightOnlyLinear:
        from voxtral_native.export.ops import pack_int4

        w = linear.weight  # torchao IntxUnpackedToInt8Tensor: qdata [N, K] int8, scale [N, K / group]
        if torch.any(w.zero_point != 0):
            raise ValueError("weight-only linears must be symmetric (zero points of 0)")
        bits = 4 if w.target_dtype == torch.int4 else 8
        qweight = pack_int4(w.qdata) if bits == 4 else w.qdata.contiguous()
        bias = None if linear.bias is None else linear.bias.detach().float()
        return cls(qweight, w.scale.detach().float().contiguous(), bias, bits, w.block_size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from voxtral_native.export import ops

        # The kernel computes in float32 (a no-op cast for fp32 models).
        return ops.linear_wq(x.float(), self.qweight, self.scales, self.bias, self.bits, self.group_size).to(x.dtype)


def _replace_weight_only_linears_(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and hasattr(child.weight, "qdata"):
            setattr(module, name, WeightOnlyLinear.from_torchao(child))
        else:
            _replace_weight_only_linears_(child)


def quantize_module_(
    module: nn.Module, scheme: QuantScheme | None, kind: type[nn.Module], names: set[str] | None = None
) -> int:
    """Quantizes every `kind` (nn.Linear or nn.Embedding) inside `module` in place whose
    input width is a multiple of the group size (and whose name is in `names`, if given);
    returns how many were quantized."""
    if scheme is None:
        return 0
    from torchao.quantization import quantize_

    count = 0

    def matches(m: nn.Module, fqn: str) -> bool:
        nonlocal count
        ok = isinstance(m, kind) and (scheme.group_size == 0 or m.weight.shape[-1] % scheme.group_size == 0)
        ok = ok and (names is None or fqn in names)
        count += ok
        return ok

    quantize_(module, scheme.torchao_config(), filter_fn=matches)
    if kind is nn.Linear and not scheme.name.startswith("8da"):
        if isinstance(module, nn.Linear):
            raise ValueError("quantize the module that holds the linear layer, not the layer itself")
        _replace_weight_only_linears_(module)
    return count


def quantizer(
    encoder: QuantScheme | None, decoder: QuantScheme | None, embedding: QuantScheme | None
) -> Callable[[str, nn.Module], None]:
    """A load-time hook for checkpoint.load_stt: quantizes each block as soon as it is read,
    so a full-size model never exists in full precision all at once.

    Encoder scheme: encoder layers and the audio adapter. Decoder scheme: decoder layers
    and the output head. Embedding scheme: the token table.
    """

    def hook(name: str, block: nn.Module) -> None:
        if name.startswith("layers."):
            quantize_module_(block, decoder, nn.Linear)
        elif name.startswith("mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers."):
            quantize_module_(block, encoder, nn.Linear)
        elif name == "":  # the rest: adapter, output head, token table
            emb = block.mm_streams_embeddings.embedding_module
            quantize_module_(emb.audio_language_projection, encoder, nn.Linear)
            quantize_module_(emb.tok_embeddings, embedding, nn.Embedding)
            quantize_module_(block, decoder, nn.Linear, names={"output"})

    return hook
