"""Building blocks shared by the Voxtral models: RMSNorm, interleaved rotary embeddings,
SwiGLU, sinusoidal embeddings, and attention over a ring KV cache.

Shapes: B batch (always 1 in exported programs), T tokens in this call, H heads,
D head dim, S ring-cache slots.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from voxtral_native.export import ops
from voxtral_native.export.config import TransformerConfig


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * weight, the mean taken in float32.

    The mean over the last axis is a [1, dim] linear of x^2 (times 1 / dim) rather than
    `mean(-1)`: XNNPACK takes `mean.dim` only over the inner two axes of a 4-D tensor, so
    every norm written with `mean(-1)` split the graph into a delegate call on each side of
    a portable op; a linear it takes at any leading shape (dynamic T included).
    """

    buffer_fill = {"ones": 1.0}  # how the meta-device loader (export/checkpoint.py) fills it

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.register_buffer("ones", torch.ones(1, dim), persistent=False)  # [1, dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        mean_square = nn.functional.linear(xf * xf, self.ones.float()) * (1.0 / xf.shape[-1])  # [..., 1]
        return (xf * torch.rsqrt(mean_square + self.eps)).to(x.dtype) * self.weight


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, D/2] for absolute `positions` [T]."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates x [B, T, H, D] in Mistral's interleaved convention: pairs (x[2i], x[2i+1])."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2).to(x.dtype)


def sinusoidal_embedding(t: torch.Tensor, dim: int, theta: float = 10000.0) -> torch.Tensor:
    """[cos(t * f), sin(t * f)] with f_i = exp(-ln(theta) * i / (dim/2)): t [1] -> [1, dim]
    (2-D so that quantized linears, which expect a batch dimension, accept it)."""
    half = dim // 2
    inv_freq = torch.exp(-math.log(theta) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.to(torch.float32).reshape(1) * inv_freq
    return torch.cat((angles.cos(), angles.sin()))[None, :]


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden_dim: int, w2_bias: bool):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=w2_bias)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(nn.functional.silu(self.w1(x)) * self.w3(x))


class RingAttention(nn.Module):
    """Causal sliding-window GQA attention whose keys/values live in a ring cache.

    One code path for streaming and offline: a call attends its T queries (at absolute
    positions start_pos..start_pos+T-1) over the cached past and themselves. The ring has
    window + max_tokens - 1 slots, so a call of up to max_tokens never overwrites a key
    that one of its own queries still needs; attention reads only the filled, in-window
    slots (voxtral::ring_sdpa), never the whole allocation.
    """

    def __init__(self, cfg: TransformerConfig, max_tokens: int, biases: bool):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.window, self.rope_theta = cfg.sliding_window, cfg.rope_theta
        # Whisper-style biases: on wq, wv, wo but never on wk.
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=biases)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=biases)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=biases)
        slots = cfg.sliding_window + max_tokens - 1
        cache_shape = (1, cfg.n_kv_heads, slots, cfg.head_dim)
        self.register_buffer("k_cache", torch.zeros(cache_shape), persistent=False)  # [1, Hkv, S, D]
        self.register_buffer("v_cache", torch.zeros(cache_shape), persistent=False)

    def forward(self, x: torch.Tensor, start_pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, t, _ = x.shape
        q = apply_rope(self.wq(x).view(b, t, self.n_heads, self.head_dim), cos, sin)
        k = apply_rope(self.wk(x).view(b, t, self.n_kv_heads, self.head_dim), cos, sin)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim)
        slots = torch.remainder(start_pos + torch.arange(t, device=x.device), self.k_cache.shape[2])  # [T]
        self.k_cache.index_copy_(2, slots, k.transpose(1, 2).to(self.k_cache.dtype))
        self.v_cache.index_copy_(2, slots, v.transpose(1, 2).to(self.v_cache.dtype))
        out = ops.ring_sdpa(q, self.k_cache, self.v_cache, start_pos, self.window)  # [B, T, H, D]
        return self.wo(out.reshape(b, t, self.n_heads * self.head_dim))
