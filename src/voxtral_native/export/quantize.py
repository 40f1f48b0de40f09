"""Quantization recipes (torchao source transforms), applied before torch.export.

Linear layers: 4w / 8w (weight-only), 8da4w / 8da8w (int8 dynamic activations, int4 /
int8 weights), each with a group size (0 = one scale per output channel). Embedding
tables: 4w / 8w. torchao computes every quantization (scales by its HQQ scale search).
XNNPACK runs the 8da linears; weight-only linears become WeightOnlyLinear, run by
libvoxtral's voxtral::linear_wq kernel (ExecuTorch 1.5.1's XNNPACK lowering of weight-only
linears ignores their scales); the ExecuTorch quantized kernels (linked by libvoxtral)
run the quantized embedding lookups.

AOTInductor packages (GPU backend) have no libvoxtral kernels: there 4w linears become
TinyGemmInt4Linear (PyTorch's own int4 kernels, bf16 activations) and 8w linears stay
WeightOnlyLinear, traced as its reference (dequantize + matmul, fused by Inductor).
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


def tinygemm_fits(linear: nn.Linear, group_size: int) -> bool:
    """Whether PyTorch's tinygemm kernels take this layer: K in whole 32-wide k-tiles and whole
    groups, N in whole 8-row tiles, a group size the kernels have."""
    n, k = linear.weight.shape
    return group_size in (32, 64, 128, 256) and k % group_size == 0 and k % 32 == 0 and n % 8 == 0


class TinyGemmInt4Linear(nn.Module):
    """An int4 weight-only linear on PyTorch's tinygemm kernels (aten._weight_int4pack_mm on
    CUDA, _weight_int4pack_mm_for_cpu on the CPU): the AOTI backend's int4 layer.

    Asymmetric groups of `group_size` along K, from each group's min and max (a plain affine
    fit, no search): w[n, k] ~= (q[n, k] - 8) * scale + zero, q in [0, 15], scale = (max - min)
    / 15, zero = min + 8 * scale. Buffers: packed, the device's tile layout of q (it differs
    between CPU and CUDA, so a package is packed for the device it runs on); scales_and_zeros
    [K / group_size, N, 2] bf16; bias [N] or None. Activations are bf16 inside.
    """

    def __init__(self, packed: torch.Tensor, scales_and_zeros: torch.Tensor, bias: torch.Tensor | None,
                 in_features: int, out_features: int, group_size: int):  # fmt: skip
        super().__init__()
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.register_buffer("bias", bias)
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size

    @staticmethod
    def quantize(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """w [N, K] -> (q [N, K] int32 in [0, 15], scales_and_zeros [K / group, N, 2] float32)."""
        n, k = w.shape
        groups = w.float().reshape(n, k // group_size, group_size)
        low, high = groups.amin(-1), groups.amax(-1)  # [N, K / group]
        scale = ((high - low) / 15).clamp(min=1e-8)
        q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(n, k)
        return q, torch.stack([scale, low + 8 * scale], dim=-1).transpose(0, 1).contiguous()

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int, device: str) -> TinyGemmInt4Linear:
        n, k = linear.weight.shape
        q, scales_and_zeros = cls.quantize(linear.weight.detach().to(device), group_size)
        inner_k_tiles = 8 if k % 128 == 0 else 4 if k % 64 == 0 else 2
        if torch.device(device).type == "cpu":
            packed = torch._convert_weight_to_int4pack_for_cpu(q, inner_k_tiles)
        else:  # CUDA takes two values per byte, the even one in the high nibble
            packed = torch._convert_weight_to_int4pack((q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8), inner_k_tiles)
        bias = None if linear.bias is None else linear.bias.detach().to(device)
        return cls(packed, scales_and_zeros.to(torch.bfloat16), bias, k, n, group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [M, K], dense: the kernels take no strides, and Inductor drops a plain .contiguous()
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).clone(memory_format=torch.contiguous_format)
        sz = self.scales_and_zeros.to(torch.bfloat16)  # a no-op, unless a module.float() widened it
        if self.packed.device.type == "cpu":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, self.group_size, sz)
        else:
            y = torch.ops.aten._weight_int4pack_mm(flat, self.packed, self.group_size, sz)
        y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias.to(x.dtype)


def _replace_tinygemm_linears_(module: nn.Module, group_size: int, device: str, matches, prefix: str = "") -> None:
    for name, child in module.named_children():
        fqn = prefix + name
        if isinstance(child, nn.Linear) and matches(child, fqn):
            setattr(module, name, TinyGemmInt4Linear.from_linear(child, group_size, device))
        else:
            _replace_tinygemm_linears_(child, group_size, device, matches, fqn + ".")


def _replace_weight_only_linears_(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and hasattr(child.weight, "qdata"):
            setattr(module, name, WeightOnlyLinear.from_torchao(child))
        else:
            _replace_weight_only_linears_(child)


# Weights quantized at a time: a linear or embedding table with more elements than this is
# quantized in blocks of whole rows of about this size. Two reasons:
# - Memory: torchao's HQQ scale search holds several float32 copies of the weight it
#   quantizes. On the 131072 x 3072 output head that was ~6 GB on top of the model, the
#   full-size export's peak (benchmarks/results/stt_export_full.md).
# - Time: HQQ iterates until the largest relative change of any scale in the tensor is below
#   1e-5, or 20 times. A 9216 x 3072 matrix almost always runs all 20; a block of ~100 rows
#   stops as soon as its own scales settle. Full-size linears quantize 8-13x faster
#   (benchmarks/results/export_time.md).
# Each group lies within one row. A group's scale is a function of its rounded weights, so
# once they repeat, the scale repeats exactly. A change in the rounding moves the scale by far
# more than 1e-5: one weight's step changes its group's sums by ~1e-3. So a block stops only
# where all its scales have reached such a fixed point, and further iterations of the whole
# would not change them: the tensors are the same bit for bit. test_stt_export checks this on
# every scheme. The full-size programs' outputs were compared too (export_time.md).
BLOCK_ELEMENTS = 1 << 18


def rows_per_block(weight: torch.Tensor) -> int:
    """Rows of `weight` ([rows, cols]) quantized at a time."""
    return max(1, BLOCK_ELEMENTS // weight.shape[-1])


def _quantize_rows_in_blocks_(layer: nn.Linear | nn.Embedding, scheme: QuantScheme) -> None:
    """torchao quantization of `layer`'s weight ([out, in] or [num, dim]), rows_per_block rows
    at a time, assembled into the one quantized weight torchao would have made of the whole."""
    from torchao.quantization import quantize_

    weight = layer.weight.detach()  # [rows, cols]
    parts = []
    step = rows_per_block(weight)
    for start in range(0, weight.shape[0], step):
        rows = weight[start : start + step]
        with torch.device("meta"):
            if isinstance(layer, nn.Embedding):
                block = nn.Sequential(nn.Embedding(rows.shape[0], rows.shape[1]))
            else:
                block = nn.Sequential(nn.Linear(rows.shape[1], rows.shape[0], bias=False))
        block[0].weight = nn.Parameter(rows, requires_grad=False)
        quantize_(block, scheme.torchao_config(), filter_fn=lambda m, _: isinstance(m, type(layer)))
        parts.append(block[0].weight)
    first = parts[0]
    data = [torch.cat([getattr(part, name) for part in parts]) for name in first.tensor_data_names]
    attributes = [getattr(first, name) for name in first.tensor_attribute_names]
    layer.weight = nn.Parameter(type(first)(*data, *attributes), requires_grad=False)


def quantize_module_(
    module: nn.Module, scheme: QuantScheme | None, kind: type[nn.Module], names: set[str] | None = None,
    tinygemm_device: str | None = None,
) -> int:
    """Quantizes every `kind` (nn.Linear or nn.Embedding) inside `module` in place whose
    input width is a multiple of the group size (and whose name is in `names`, if given);
    returns how many were quantized. `tinygemm_device` (AOTI exports): 4w linears become
    TinyGemmInt4Linear packed for that device instead."""
    if scheme is None:
        return 0
    if tinygemm_device is not None and kind is nn.Linear and scheme.name == "4w":
        if isinstance(module, nn.Linear):
            raise ValueError("quantize the module that holds the linear layer, not the layer itself")
        count = 0

        def fits(m: nn.Linear, fqn: str) -> bool:
            nonlocal count
            ok = tinygemm_fits(m, scheme.group_size) and (names is None or fqn in names)
            count += ok
            return ok

        _replace_tinygemm_linears_(module, scheme.group_size, tinygemm_device, fits)
        return count
    from torchao.quantization import quantize_

    count = 0

    def matches(m: nn.Module, fqn: str) -> bool:
        nonlocal count
        ok = isinstance(m, kind) and (scheme.group_size == 0 or m.weight.shape[-1] % scheme.group_size == 0)
        ok = ok and (names is None or fqn in names)
        if ok and m.weight.shape[0] > rows_per_block(m.weight):
            _quantize_rows_in_blocks_(m, scheme)  # large: bounded temporaries, early stops per block
            count += 1
            return False
        count += ok
        return ok

    quantize_(module, scheme.torchao_config(), filter_fn=matches)
    if kind is nn.Linear and not scheme.name.startswith("8da"):
        if isinstance(module, nn.Linear):
            raise ValueError("quantize the module that holds the linear layer, not the layer itself")
        _replace_weight_only_linears_(module)
    return count


def quantizer(
    encoder: QuantScheme | None, decoder: QuantScheme | None, embedding: QuantScheme | None,
    tinygemm_device: str | None = None,
) -> Callable[[str, nn.Module], None]:
    """A load-time hook for checkpoint.load_stt: quantizes each block as soon as it is read,
    so a full-size model never exists in full precision all at once.

    Encoder scheme: encoder layers and the audio adapter. Decoder scheme: decoder layers
    and the output head. Embedding scheme: the token table. `tinygemm_device`: as in
    quantize_module_.
    """
    dev = tinygemm_device

    def hook(name: str, block: nn.Module) -> None:
        if name.startswith("layers."):
            quantize_module_(block, decoder, nn.Linear, tinygemm_device=dev)
        elif name.startswith("mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers."):
            quantize_module_(block, encoder, nn.Linear, tinygemm_device=dev)
        elif name == "":  # the rest: adapter, output head, token table
            emb = block.mm_streams_embeddings.embedding_module
            quantize_module_(emb.audio_language_projection, encoder, nn.Linear, tinygemm_device=dev)
            quantize_module_(emb.tok_embeddings, embedding, nn.Embedding)
            quantize_module_(block, decoder, nn.Linear, names={"output"}, tinygemm_device=dev)

    return hook
