"""Streaming writer of an all-bf16 safetensors file.

Format: u64 little-endian header length, the JSON header ({name: {dtype, shape,
data_offsets}} plus ``__metadata__``, space-padded to a multiple of 8 bytes), then the
raw tensor bytes back to back. The header depends only on names and shapes, so it is
written first and each tensor's bytes follow as they are produced: peak memory is one
chunk, whatever the file size.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from voxtral_native.make_checkpoint.specs import TensorSpec

_PROGRESS_EVERY = 512 << 20  # bytes between progress lines


def _header(tensors: Sequence[TensorSpec]) -> bytes:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in tensors:
        size = 2 * t.numel
        header[t.name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    return blob + b" " * (-len(blob) % 8)


def write_bf16_safetensors(
    path: Path,
    tensors: Sequence[TensorSpec],
    values: Callable[[TensorSpec], Iterable[np.ndarray]],
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write ``tensors`` to ``path``; ``values(t)`` yields t's bf16 bits ("<u2") in chunks."""
    header = _header(tensors)
    total = sum(2 * t.numel for t in tensors)
    written = 0
    next_report = _PROGRESS_EVERY
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for i, t in enumerate(tensors, 1):
            n = 0
            for chunk in values(t):
                f.write(chunk.data)
                n += chunk.size
            if n != t.numel:
                raise RuntimeError(f"{t.name}: got {n} values for shape {t.shape}")
            written += 2 * n
            if progress is not None and (written >= next_report or i == len(tensors)):
                progress(f"{path.name}: {written / 1e9:.2f} / {total / 1e9:.2f} GB ({i}/{len(tensors)} tensors)")
                next_report = written + _PROGRESS_EVERY
