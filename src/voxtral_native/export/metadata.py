"""What an exported program tells its runner (speech-to-text and text-to-speech): constant methods (name -> int or float),
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
    config: SttConfig, audio: dict, *, max_encoder_tokens: int, max_decoder_tokens: int, activations_bf16: bool,
    max_verify_tokens: int = 1,
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
        # decode's token output covers its last min(T, max_verify_tokens) positions (1: the
        # programs before speculative decoding)
        "max_verify_tokens": max_verify_tokens,
    }


MODEL_TTS = 2  # `model_kind`: Voxtral TTS (text-to-speech)
# The streaming schedule of the codec (ExecuTorch's and vllm-omni's numbers): the first chunk
# once FIRST_CHUNK_FRAMES frames exist (0.4 s), then every CHUNK_FRAMES (2 s), each chunk
# decoded after CODEC_CONTEXT_FRAMES frames of left context whose samples are dropped.
FIRST_CHUNK_FRAMES, CHUNK_FRAMES, CODEC_CONTEXT_FRAMES = 5, 25, 25


def tts_metadata(config, options, *, activations_bf16: bool) -> dict[str, int | float]:
    """`config`: export.tts_config.TtsConfig; `options`: export_tts.TtsExportOptions."""
    from voxtral_native.export.models.tts import CFG_ALPHA, EMPTY_AUDIO, END_AUDIO, NOISE_SCALE
    from voxtral_native.export.tts_config import N_SPECIAL_CODES

    return {
        "format_version": FORMAT_VERSION,
        "model_kind": MODEL_TTS,
        # audio out
        "sample_rate": config.sampling_rate,
        "samples_per_frame": config.codec.samples_per_frame,
        # codes (every code shifted by n_special_codes; EMPTY_AUDIO and END_AUDIO below it)
        "n_codebooks": config.n_codebooks,
        "semantic_codebook_size": config.semantic_codebook_size,
        "acoustic_levels": config.acoustic_levels,
        "n_special_codes": N_SPECIAL_CODES,
        "empty_audio_code": EMPTY_AUDIO,
        "end_audio_code": END_AUDIO,
        # flow matching: the runner draws n_acoustic_codebooks noise values per frame and calls
        # acoustic_step n_decoding_steps times
        "n_decoding_steps": config.n_decoding_steps,
        "cfg_alpha": CFG_ALPHA,
        "noise_scale": NOISE_SCALE,
        # methods: prefill(token_ids, voice), text_prefill(token_ids, position),
        # decode(codes, position), semantic_logits(hidden), acoustic_step(hidden, x, step),
        # codec(codes), first_chunk_codec(codes)
        "dim": config.lm.dim,
        "vocab_size": config.vocab_size,
        "semantic_logits_size": -(-(config.semantic_codebook_size + N_SPECIAL_CODES) // 128) * 128,
        "max_positions": options.max_positions,
        "max_prompt_tokens": options.max_prompt_tokens,
        "max_codec_frames": options.max_codec_frames,
        # the LM's ring cache: position p lives in slot p % lm_cache_slots (models/layers.py)
        "lm_cache_slots": min(config.lm.sliding_window, options.max_positions) + options.max_prompt_tokens - 1,
        # streaming schedule
        "first_chunk_frames": FIRST_CHUNK_FRAMES,
        "chunk_frames": CHUNK_FRAMES,
        "codec_context_frames": CODEC_CONTEXT_FRAMES,
        "lm_input_is_bf16": int(activations_bf16),
    }
