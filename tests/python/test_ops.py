"""voxtral:: custom ops. ring_sdpa: the PyTorch reference against plain attention over the
full history, and the C++ kernel (libvoxtral, through an exported program) against the
reference. linear_wq: the reference against torchao's dequantized weights, the C++ kernel
against the reference."""

from __future__ import annotations

import pytest
import torch  # noqa: E402

import voxtral_native  # noqa: E402
from voxtral_native.export import ops  # noqa: E402

voxtral_native.native()  # registers the C++ kernels with the ExecuTorch runtime


def windowed_attention(q_hist: torch.Tensor, k_hist: torch.Tensor, v_hist: torch.Tensor, window: int):
    """Independent reference: attention over the whole linear history [B, P, H, D], each
    position p seeing (p - window, p], by F.scaled_dot_product_attention with a mask."""
    p = k_hist.shape[1]
    pos = torch.arange(p)
    mask = (pos[None, :] <= pos[:, None]) & (pos[None, :] > pos[:, None] - window)  # [P, P]
    group = q_hist.shape[2] // k_hist.shape[2]
    k = k_hist.repeat_interleave(group, dim=2).transpose(1, 2)
    v = v_hist.repeat_interleave(group, dim=2).transpose(1, 2)
    out = torch.nn.functional.scaled_dot_product_attention(q_hist.transpose(1, 2), k, v, attn_mask=mask)
    return out.transpose(1, 2)


class RingAttention(torch.nn.Module):
    """Writes a chunk's keys/values into ring caches (index_copy_), then ring_sdpa."""

    def __init__(self, cache_size: int, kv_heads: int, head_dim: int, window: int):
        super().__init__()
        self.register_buffer("k_cache", torch.zeros(1, kv_heads, cache_size, head_dim))
        self.register_buffer("v_cache", torch.zeros(1, kv_heads, cache_size, head_dim))
        self.window = window

    def forward(self, q, k, v, start_pos):
        slots = torch.remainder(start_pos + torch.arange(q.shape[1]), self.k_cache.shape[2])
        self.k_cache.index_copy_(2, slots, k.transpose(1, 2))
        self.v_cache.index_copy_(2, slots, v.transpose(1, 2))
        return ops.ring_sdpa(q, self.k_cache, self.v_cache, start_pos, self.window)


def stream(module, q_hist, k_hist, v_hist, chunk: int, run=None):
    outs = []
    for start in range(0, q_hist.shape[1], chunk):
        args = (q_hist[:, start : start + chunk], k_hist[:, start : start + chunk], v_hist[:, start : start + chunk],
                torch.tensor([start]))
        outs.append(run(args) if run else module(*args))
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize(("window", "chunk", "heads", "kv_heads"), [(5, 1, 4, 2), (7, 3, 4, 1), (50, 4, 2, 2)])
def test_reference_equals_windowed_attention_past_the_ring(window, chunk, heads, kv_heads):
    torch.manual_seed(0)
    positions, d = 30, 8  # several laps of the ring when window is small
    q, k, v = (torch.randn(1, positions, h, d) for h in (heads, kv_heads, kv_heads))
    ring = RingAttention(window + chunk - 1, kv_heads, d, window)
    got = stream(ring, q, k, v, chunk)
    torch.testing.assert_close(got, windowed_attention(q, k, v, window), atol=1e-5, rtol=1e-5)


def test_reference_refuses_a_cache_too_small_for_the_chunk():
    ring = RingAttention(cache_size=6, kv_heads=1, head_dim=4, window=5)
    with pytest.raises(ValueError, match="too small"):
        ring(torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4), torch.tensor([0]))


def export_program(module, chunk: int, heads: int, kv_heads: int, d: int, path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    example = (torch.randn(1, chunk, heads, d), torch.randn(1, chunk, kv_heads, d), torch.randn(1, chunk, kv_heads, d),
               torch.tensor([0]))
    with torch.no_grad():
        exported = torch.export.export(module, example)
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch(
        ExecutorchBackendConfig(run_reinplace_pass=True)
    )
    path.write_bytes(program.buffer)
    return path


# The kernel takes keys in blocks of 32 positions and query rows in tiles of 32: windows and
# streams spanning several blocks, ring laps, several tiles per call and grouped heads.
@pytest.mark.parametrize(
    ("window", "chunk", "heads", "kv_heads", "d", "positions"),
    [(6, 1, 4, 2, 16, 36), (6, 3, 4, 2, 16, 36), (40, 4, 4, 2, 16, 36), (70, 5, 8, 2, 64, 150),
     (45, 40, 2, 2, 24, 120), (100, 1, 32, 8, 128, 130)],
)  # fmt: skip
def test_cpp_kernel_matches_reference_in_exported_program(window, chunk, heads, kv_heads, d, positions, tmp_path):
    from executorch.runtime import Runtime

    pte = export_program(RingAttention(window + chunk - 1, kv_heads, d, window), chunk, heads, kv_heads, d,
                         tmp_path / "ring.pte")
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, positions, h, d) for h in (heads, kv_heads, kv_heads))
    got = stream(None, q, k, v, chunk, run=lambda args: method.execute(list(args))[0])
    torch.testing.assert_close(got, windowed_attention(q, k, v, window), atol=1e-5, rtol=1e-5)


def test_cpp_kernel_gives_the_same_floats_for_any_chunking(tmp_path):
    """A query's arithmetic depends on its position alone, not on the call it came in: a
    stream fed 1, 5 or 32 positions a call gets bit-identical outputs (so batching a live
    stream under a latency budget cannot change its attention)."""
    from executorch.runtime import Runtime

    window, heads, kv_heads, d, positions = 60, 4, 2, 32, 160
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, positions, h, d) for h in (heads, kv_heads, kv_heads))
    outs = []
    for chunk in (1, 5, 32):
        pte = export_program(RingAttention(window + chunk - 1, kv_heads, d, window), chunk, heads, kv_heads, d,
                             tmp_path / f"ring{chunk}.pte")
        method = Runtime.get().load_program(str(pte)).load_method("forward")
        outs.append(stream(None, q, k, v, chunk, run=lambda args, m=method: m.execute(list(args))[0]))
    torch.testing.assert_close(outs[0], windowed_attention(q, k, v, window), atol=1e-5, rtol=1e-5)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])

    # The same program through libvoxtral's own Program (float inputs only: the int64
    # position input is refused with a clear error rather than misread).
    program = voxtral_native.native().Program.load(str(pte))
    with pytest.raises(voxtral_native.VoxtralError):
        program.run("forward", [q[:, :chunk].numpy(), k[:, :chunk].numpy(), v[:, :chunk].numpy(),
                                torch.zeros(1).numpy()])


class QuantLinear(torch.nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool, weight_dtype, group_size: int):
        super().__init__()
        from torchao.quantization import quantize_
        from torchao.quantization.granularity import PerAxis, PerGroup
        from torchao.quantization.quant_api import IntxWeightOnlyConfig

        from voxtral_native.export.quantize import WeightOnlyLinear

        linear = torch.nn.Sequential(torch.nn.Linear(in_features, out_features, bias=bias))
        granularity = PerGroup(group_size) if group_size else PerAxis(0)
        quantize_(linear, IntxWeightOnlyConfig(weight_dtype=weight_dtype, granularity=granularity))
        self.torchao_weight = linear[0].weight.dequantize()  # independent dequantization
        self.torchao_bias = linear[0].bias
        self.linear = WeightOnlyLinear.from_torchao(linear[0])

    def forward(self, x):
        return self.linear(x)


# Group sizes 8 (int8) and 16 (int4) take the kernel's portable path; the rest take its
# AVX2 path where the CPU has it.
WQ_CASES = [(torch.int8, 0, True), (torch.int8, 32, False), (torch.int4, 32, True), (torch.int4, 0, False),
            (torch.int4, 128, False), (torch.int8, 8, True), (torch.int4, 16, False)]


@pytest.mark.parametrize(("weight_dtype", "group_size", "bias"), WQ_CASES)
def test_linear_wq_reference_equals_torchao_dequantized_linear(weight_dtype, group_size, bias):
    torch.manual_seed(0)
    m = QuantLinear(256, 48, bias, weight_dtype, group_size)
    x = torch.randn(3, 5, 256)
    expected = torch.nn.functional.linear(x, m.torchao_weight, m.torchao_bias)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("weight_dtype", "group_size", "bias"), WQ_CASES)
def test_linear_wq_cpp_kernel_matches_reference(weight_dtype, group_size, bias, tmp_path):
    """Through an exported program with a dynamic row count (1 row: a decoder step; 37: a
    prefill), so the kernel resizes its output and handles M > 1."""
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    torch.manual_seed(1)
    m = QuantLinear(256, 72, bias, weight_dtype, group_size).eval()
    rows = torch.export.Dim("rows", min=1, max=64)
    with torch.no_grad():
        exported = torch.export.export(m, (torch.randn(1, 4, 256),), dynamic_shapes={"x": {1: rows}})
    (tmp_path / "wq.pte").write_bytes(to_edge_transform_and_lower(exported).to_executorch().buffer)
    method = Runtime.get().load_program(str(tmp_path / "wq.pte")).load_method("forward")
    for n in (1, 37, 64):
        x = torch.randn(1, n, 256)
        torch.testing.assert_close(method.execute([x])[0], m(x), atol=1e-4, rtol=1e-5)


def test_int4_packing_round_trips():
    q = torch.randint(-8, 8, (6, 40), dtype=torch.int8)
    packed = ops.pack_int4(q)
    assert packed.shape == (6, 20) and packed.dtype == torch.uint8
    assert torch.equal(ops.unpack_int4(packed), q)
