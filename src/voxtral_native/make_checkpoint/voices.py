"""voice_embedding/<name>.pt: the preset voices of the TTS checkpoint.

As in the released checkpoint, each file is ``torch.save`` of one bf16 tensor [N, dim]
(a zip whose data entry is ``<name>/data/0``); its N rows replace the embeddings of the
N [AUDIO] tokens of the prompt, so they are drawn like token embeddings, N(0, 1).
"""

from __future__ import annotations

from pathlib import Path

from voxtral_native.make_checkpoint.specs import Normal
from voxtral_native.make_checkpoint.weights import draw, rng_for, to_bf16

VOICE_DIR = "voice_embedding"


def write_voices(out_dir: Path, frames: dict[str, int], dim: int, seed: int) -> None:
    """Write one ``<out_dir>/voice_embedding/<name>.pt`` of shape [frames[name], dim] per voice."""
    import torch  # the [export] extra; only this tool needs it

    voice_dir = out_dir / VOICE_DIR
    voice_dir.mkdir(exist_ok=True)
    for name, n in frames.items():
        rel = f"{VOICE_DIR}/{name}.pt"
        bits = to_bf16(draw(rng_for(seed, rel), Normal(1.0), n * dim))
        voice = torch.from_numpy(bits.view("<i2").reshape(n, dim)).view(torch.bfloat16)
        torch.save(voice, voice_dir / f"{name}.pt")
