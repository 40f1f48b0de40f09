"""Deterministic random tensor values, as little-endian bf16 bit patterns.

Each tensor draws from its own generator seeded by (seed, sha256(name)), so its values
depend only on the seed and its name: not on the tensor order, and not on the other
tensors of the checkpoint. Values come in chunks of at most ``CHUNK`` elements so
that writing a 400M-element embedding needs tens of MB, not GB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

from voxtral_native.make_checkpoint.specs import Normal, TensorSpec, Uniform

# Elements per chunk: 16 MiB of float32 (the bf16 rounding works in place on it).
# Part of the output's definition: changing it changes the bytes of large tensors.
CHUNK = 1 << 22


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The generator of tensor (or voice) ``name``."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key])))


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns ("<u2"), rounding to nearest even. Clobbers ``x``.

    bf16 is the top half of a float32: add 0x7FFF plus the lowest kept bit, then
    drop the low 16 bits (no NaN or Inf here, so no special cases).
    """
    bits = x.view(np.uint32)
    carry = bits >> 16
    carry &= 1
    carry += 0x7FFF
    bits += carry
    bits >>= 16
    return bits.astype("<u2")


def draw(rng: np.random.Generator, init: Normal | Uniform, n: int) -> np.ndarray:
    """``n`` float32 values from ``init``."""
    if isinstance(init, Uniform):
        x = rng.random(n, dtype=np.float32)
        x *= np.float32(init.high - init.low)
        x += np.float32(init.low)
    else:
        x = rng.standard_normal(n, dtype=np.float32)
        x *= np.float32(init.std)
        x += np.float32(init.mean)
    return x


def bf16_chunks(spec: TensorSpec, seed: int) -> Iterator[np.ndarray]:
    """The values of ``spec`` in row-major order, as bf16 chunks of <= CHUNK elements."""
    rng = rng_for(seed, spec.name)
    remaining = spec.numel
    while remaining:
        n = min(CHUNK, remaining)
        yield to_bf16(draw(rng, spec.init, n))
        remaining -= n
