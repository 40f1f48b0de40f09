"""What an exported program tells its runner: constant methods (name -> int or float),
written by export and read by libvoxtral into one struct. The runner hard-codes none of
these; it refuses a `format_version` it does not know (the artifact's, artifact.py).

The runtime reads them through one table per model kind (csrc/stt/metadata.cpp); a test
holds the names written here equal to the names read there.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxtral_native.artifact import FORMAT_VERSION
from voxtral_native.errors import InvalidModelError
from voxtral_native.export.config import SttConfig

MODEL_STT = 1  # `model_kind`: Voxtral Realtime (speech-to-text)
# The delays the model was trained for (mistral_common's AudioConfig): multiples of one
# 80 ms token up to MAX_DELAY_MS, and LONG_DELAY_MS.
MAX_DELAY_MS, LONG_DELAY_MS = 1200, 2400
# Silence fed at the end of input beyond the delay (mistral_common's right pad: delay + 1 + 10
# tokens after rounding up to a whole token), so the last words come out.
N_RIGHT_PAD_TOKENS = 1 + 10


# tekken.json's `audio` block: the stream schedule. Required: a tokenizer without them is
# not the realtime model's, and guessing would silently mis-time every stream.
STT_AUDIO_SETTINGS = ("transcription_delay_ms", "streaming_n_left_pad_tokens")


def tekken_audio_settings(path: Path) -> dict:
    """The `audio` block of a checkpoint's tekken.json, with the settings the stream needs."""
    try:
        tekken = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidModelError(f"{path} is not valid JSON ({e})") from None
    audio = tekken.get("audio") if isinstance(tekken, dict) else None
    if not isinstance(audio, dict):
        raise InvalidModelError(f"{path} has no 'audio' block: not the tokenizer of a Voxtral speech model")
    missing = [k for k in STT_AUDIO_SETTINGS if not isinstance(audio.get(k), (int, float))]
    if missing:
        raise InvalidModelError(f"{path}: the 'audio' block lacks {', '.join(missing)} (the stream schedule)")
    return audio


def stt_metadata(
    config: SttConfig, audio: dict, *, max_encoder_tokens: int, max_decoder_tokens: int, activations_bf16: bool
) -> dict[str, int | float]:
    """`audio` is the tokenizer's `audio` block (tekken.json): the stream schedule."""
    mel_frames_per_token = 2 * config.downsample_factor  # conv stride 2, then 4x grouping
    return {
        "format_version": FORMAT_VERSION,
        "model_kind": MODEL_STT,
        # log-mel frontend
        "sample_rate": config.sampling_rate,
        "hop_length": config.hop_length,
        "window_size": config.window_size,  # = n_fft
        "num_mel_bins": config.num_mel_bins,
        "global_log_mel_max": config.global_log_mel_max,
        # stream schedule
        "mel_frames_per_token": mel_frames_per_token,
        "samples_per_token": mel_frames_per_token * config.hop_length,
        "encoder_frames_per_token": config.downsample_factor,
        "default_delay_ms": int(audio["transcription_delay_ms"]),
        "max_delay_ms": MAX_DELAY_MS,
        "long_delay_ms": LONG_DELAY_MS,
        "n_left_pad_tokens": int(audio["streaming_n_left_pad_tokens"]),
        "n_right_pad_tokens": N_RIGHT_PAD_TOKENS,
        # methods: encode(mel, start_token), decode(audio_embeds, token_ids, start_pos, delay_tokens)
        "max_encoder_tokens": max_encoder_tokens,
        "max_decoder_tokens": max_decoder_tokens,
        "encoder_window": config.encoder.sliding_window,
        "decoder_window": config.decoder.sliding_window,
        "dim": config.decoder.dim,
        "vocab_size": config.vocab_size,
        "lm_input_is_bf16": int(activations_bf16),
    }
