"""What an exported program tells its runner: constant methods (name -> int or float),
written by export and read by libvoxtral into one struct. The runner hard-codes none of
these; it refuses a `format_version` it does not know.

Bump FORMAT_VERSION whenever a method's signature or a constant's meaning changes.
"""

from __future__ import annotations

from voxtral_native.export.config import SttConfig

FORMAT_VERSION = 1
MODEL_STT = 1  # `model_kind`: Voxtral Realtime (speech-to-text)


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
        "default_delay_ms": int(audio.get("transcription_delay_ms", 480)),
        "n_left_pad_tokens": int(audio.get("streaming_n_left_pad_tokens", 32)),
        # methods: encode(mel, start_token), decode(audio_embeds, token_ids, start_pos, delay_tokens)
        "max_encoder_tokens": max_encoder_tokens,
        "max_decoder_tokens": max_decoder_tokens,
        "encoder_window": config.encoder.sliding_window,
        "decoder_window": config.decoder.sliding_window,
        "dim": config.decoder.dim,
        "vocab_size": config.vocab_size,
        "lm_input_is_bf16": int(activations_bf16),
    }
