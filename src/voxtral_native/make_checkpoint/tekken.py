"""tekken.json: a real Tekken tokenizer with Voxtral's control tokens and an audio block.

The BPE ranks are those of the Tekken file that mistral_common ships
(tekken_240911.json: 150000 ranks, of which 131072 - 1000 are used), so text ids are
the real ones: id = rank + 1000. That file has no audio tokens; we add the 1000-entry
special token table with Voxtral's control tokens at their ids and the `audio` block
that mistral_common's AudioConfig reads.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

N_SPECIAL_TOKENS = 1000

# Control token strings at their ids; every other id below 1000 is "<SPECIAL_{id}>".
# Names as mistral_common's SpecialTokens enum spells them ([OUTPUT_AUDIO] is not in
# it; third-party Voxtral code reports it at 26).
CONTROL_TOKENS = {
    0: "<unk>",
    1: "<s>",
    2: "</s>",
    3: "[INST]",
    4: "[/INST]",
    5: "[AVAILABLE_TOOLS]",
    6: "[/AVAILABLE_TOOLS]",
    7: "[TOOL_RESULTS]",
    8: "[/TOOL_RESULTS]",
    9: "[TOOL_CALLS]",
    10: "[IMG]",
    11: "<pad>",
    12: "[IMG_BREAK]",
    13: "[IMG_END]",
    14: "[PREFIX]",
    15: "[MIDDLE]",
    16: "[SUFFIX]",
    17: "[SYSTEM_PROMPT]",
    18: "[/SYSTEM_PROMPT]",
    19: "[TOOL_CONTENT]",
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    26: "[OUTPUT_AUDIO]",
    32: "[STREAMING_PAD]",
    33: "[STREAMING_WORD]",
    34: "[TRANSCRIBE]",
    35: "[REPEAT_AUDIO_TEXT]",
    36: "[NEXT_AUDIO_TEXT]",
}


def _shipped_tekken() -> dict:
    with resources.files("mistral_common").joinpath("data/tekken_240911.json").open(encoding="utf-8") as f:
        return json.load(f)


def write_tekken(path: Path, audio: dict) -> None:
    """Write tekken.json with the `audio` block ``audio`` (see specs.*_tekken_audio)."""
    shipped = _shipped_tekken()
    tekken = {
        "config": {
            **shipped["config"],
            "default_vocab_size": 131072,
            "default_num_special_tokens": N_SPECIAL_TOKENS,
            # v7: the first version with audio; it needs no tool-call tokens beyond 0-19.
            "version": "v7",
        },
        "vocab": shipped["vocab"],
        "special_tokens": [
            {"rank": i, "token_str": CONTROL_TOKENS.get(i, f"<SPECIAL_{i}>"), "is_control": True}
            for i in range(N_SPECIAL_TOKENS)
        ],
        "audio": audio,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tekken, f, ensure_ascii=False)
