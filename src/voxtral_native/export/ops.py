"""voxtral:: custom operators: PyTorch reference implementations for tracing and tests.

The exported programs call the ``.out`` variants, whose C++ kernels live in libvoxtral
(csrc/backends/executorch/ops/) and register into the ExecuTorch runtime when libvoxtral loads (importing
``voxtral_native._core`` is enough, also for ExecuTorch's Python runtime).

ring_sdpa(q, k_cache, v_cache, start_pos, window) -> out
    q        [B, T, Hq, D]  queries at absolute positions start_pos + t
    k_cache  [B, Hkv, S, D] ring: slot s holds the newest position p with p % S == s
    v_cache  [B, Hkv, S, D]
    start_pos [1] int64
    window   int: the query at p sees keys at positions (p - window, p]
    out      [B, T, Hq, D]
The chunk's own keys are written to the cache before the call; S >= window + T - 1.

linear_wq(x, qweight, scales, bias, bits, group_size) -> out    (weight-only quantized linear)
    x        [..., K] float32
    qweight  bits 8: [N, K] int8; bits 4: [N, K/2] uint8, element 2j in the low nibble and
             2j+1 in the high nibble, each stored as q + 8 (q in [-8, 7])
    scales   [N, K / group_size] float32; w[n, k] = q[n, k] * scales[n, k // group_size]
    bias     [N] float32 or None
    out      [..., N] = x @ w.T + bias
"""

from __future__ import annotations

import contextlib

import torch

_lib = torch.library.Library("voxtral", "DEF")
_lib.define("ring_sdpa(Tensor q, Tensor k_cache, Tensor v_cache, Tensor start_pos, int window) -> Tensor")
_lib.define(
    "ring_sdpa.out(Tensor q, Tensor k_cache, Tensor v_cache, Tensor start_pos, int window, *, Tensor(a!) out)"
    " -> Tensor(a!)"
)
_lib.define("linear_wq(Tensor x, Tensor qweight, Tensor scales, Tensor? bias, int bits, int group_size) -> Tensor")
_lib.define(
    "linear_wq.out(Tensor x, Tensor qweight, Tensor scales, Tensor? bias, int bits, int group_size, *, Tensor(a!) out)"
    " -> Tensor(a!)"
)


def ring_slot_positions(last_pos: torch.Tensor, cache_size: int) -> torch.Tensor:
    """[S] absolute position held by each ring slot once `last_pos` is written (< 0: empty)."""
    slots = torch.arange(cache_size, device=last_pos.device)
    return last_pos - torch.remainder(last_pos - slots, cache_size)


def ring_sdpa_reference(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start_pos: torch.Tensor, window: int
) -> torch.Tensor:
    b, t, hq, d = q.shape
    hkv, s = k_cache.shape[1], k_cache.shape[2]
    if s < window + t - 1:  # the same static check as the C++ kernel
        raise ValueError(f"ring cache of {s} slots is too small for window {window} and {t} queries")
    p0 = start_pos.reshape(()).to(torch.long)
    q_pos = p0 + torch.arange(t, device=q.device)  # [T]
    k_pos = ring_slot_positions(p0 + t - 1, s)  # [S]
    visible = (k_pos[None, :] >= 0) & (k_pos[None, :] <= q_pos[:, None]) & (k_pos[None, :] > q_pos[:, None] - window)
    group = hq // hkv
    qg = q.float().reshape(b, t, hkv, group, d).permute(0, 2, 3, 1, 4)  # [B, Hkv, G, T, D]
    scores = torch.einsum("bhgtd,bhsd->bhgts", qg, k_cache.float()) / d**0.5
    scores = scores.masked_fill(~visible, float("-inf"))
    out = torch.einsum("bhgts,bhsd->bhgtd", torch.softmax(scores, dim=-1), v_cache.float())
    return out.permute(0, 3, 1, 2, 4).reshape(b, t, hq, d).to(q.dtype)


@torch.library.impl(_lib, "ring_sdpa", "CompositeExplicitAutograd")
def _ring_sdpa(q, k_cache, v_cache, start_pos, window):
    return ring_sdpa_reference(q, k_cache, v_cache, start_pos, window)


@torch.library.impl(_lib, "ring_sdpa.out", "CompositeExplicitAutograd")
def _ring_sdpa_out(q, k_cache, v_cache, start_pos, window, *, out):
    out.copy_(ring_sdpa_reference(q, k_cache, v_cache, start_pos, window))
    return out


@torch.library.register_fake("voxtral::ring_sdpa")
def _ring_sdpa_fake(q, k_cache, v_cache, start_pos, window):
    return torch.empty_like(q)


@torch.library.register_fake("voxtral::ring_sdpa.out")
def _ring_sdpa_out_fake(q, k_cache, v_cache, start_pos, window, *, out):
    return out


_decomposed = False


@contextlib.contextmanager
def decomposed():
    """Models traced inside call the ops' PyTorch references (plain ATen ops) instead of the
    voxtral:: ops: for compilers that have no libvoxtral kernels (AOTInductor)."""
    global _decomposed
    before, _decomposed = _decomposed, True
    try:
        yield
    finally:
        _decomposed = before


def ring_sdpa_masked(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start_pos: torch.Tensor, window: int
) -> torch.Tensor:
    """ring_sdpa in plain ATen ops for compilers without libvoxtral's kernel (AOTInductor):
    every query attends over all S slots of the ring, masked by the position each slot holds
    (empty slots hold none yet and are masked out).

    Static shapes on purpose. Reading only the filled prefix (an earlier version) made the key
    length data-dependent: one device-to-host sync per layer to read start_pos, a new cuDNN
    attention plan for every new length (tens of ms, so the p95 step was 7x the median), and
    no CUDA-graph capture. The whole ring costs a fixed read instead (speech-to-text decoder,
    S = 8255: 2 x 17 MB per layer in bf16, ~0.9 GB a step, ~0.3 ms at 3 TB/s).

    Written as two matmuls around a masked softmax, not as one scaled_dot_product_attention:
    a decode step has G*T = 4 query rows per KV head, and the fused attention kernels give a
    thread block a block of queries of one head, so 8 blocks walked all 8,255 keys one after
    the other (12.2 ms a decoder step on an H100, 2x the filled-prefix version). As matmuls
    the key axis is spread over the GPU (cuBLAS), and the softmax is one fused kernel per
    row. Scores and softmax in float32, the matmuls in the input dtype.

    Queries are grouped per KV head (GQA without repeating K/V): [B, Hkv, G*T, D] against
    [B, Hkv, S, D], masked [G*T, S]. Every query sees at least its own slot, so no row is
    all -inf.
    """
    b, t, hq, d = q.shape
    hkv, s = k_cache.shape[1], k_cache.shape[2]
    if s < window + t - 1:
        raise ValueError(f"ring cache of {s} slots is too small for window {window} and {t} queries")
    g = hq // hkv
    p0 = start_pos.reshape(())
    k_pos = ring_slot_positions(p0 + t - 1, s)  # [S]
    q_pos = p0 + torch.arange(t, device=q.device)  # [T]
    visible = (k_pos[None, :] >= 0) & (k_pos[None, :] <= q_pos[:, None]) & (k_pos[None, :] > q_pos[:, None] - window)  # [T, S]
    qg = q.reshape(b, t, hkv, g, d).permute(0, 2, 3, 1, 4).reshape(b, hkv, g * t, d)
    mask = visible[None].expand(g, t, s).reshape(g * t, s)
    scores = torch.matmul(qg, k_cache.to(q.dtype).transpose(-1, -2)).float() * (d**-0.5)  # [B, Hkv, G*T, S]
    weights = torch.softmax(torch.where(mask, scores, float("-inf")), dim=-1).to(q.dtype)
    out = torch.matmul(weights, v_cache.to(q.dtype))  # [B, Hkv, G*T, D]
    return out.reshape(b, hkv, g, t, d).permute(0, 3, 1, 2, 4).reshape(b, t, hq, d)


def ring_sdpa(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start_pos: torch.Tensor, window: int):
    if _decomposed:
        return ring_sdpa_masked(q, k_cache, v_cache, start_pos, window)
    return torch.ops.voxtral.ring_sdpa(q, k_cache, v_cache, start_pos, window)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """[N, K/2] uint8 (two offset nibbles per byte) -> [N, K] int8 in [-8, 7]."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack((low, high), dim=-1).flatten(-2)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """[N, K] integers in [-8, 7] -> [N, K/2] uint8, the layout linear_wq reads."""
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def linear_wq_reference(x, qweight, scales, bias, bits: int, group_size: int) -> torch.Tensor:
    q = qweight if bits == 8 else unpack_int4(qweight)
    n, k = q.shape
    w = (q.float().reshape(n, k // group_size, group_size) * scales.float()[..., None]).reshape(n, k)
    return torch.nn.functional.linear(x, w.to(x.dtype), bias)


@torch.library.impl(_lib, "linear_wq", "CompositeExplicitAutograd")
def _linear_wq(x, qweight, scales, bias, bits, group_size):
    return linear_wq_reference(x, qweight, scales, bias, bits, group_size)


@torch.library.impl(_lib, "linear_wq.out", "CompositeExplicitAutograd")
def _linear_wq_out(x, qweight, scales, bias, bits, group_size, *, out):
    out.copy_(linear_wq_reference(x, qweight, scales, bias, bits, group_size))
    return out


@torch.library.register_fake("voxtral::linear_wq")
def _linear_wq_fake(x, qweight, scales, bias, bits, group_size):
    return x.new_empty((*x.shape[:-1], qweight.shape[0]))


@torch.library.register_fake("voxtral::linear_wq.out")
def _linear_wq_out_fake(x, qweight, scales, bias, bits, group_size, *, out):
    return out


def linear_wq(x, qweight, scales, bias, bits: int, group_size: int) -> torch.Tensor:
    if _decomposed:
        return linear_wq_reference(x, qweight, scales, bias, bits, group_size)
    return torch.ops.voxtral.linear_wq(x, qweight, scales, bias, bits, group_size)
