"""Test-only reference for Voxtral-Mini-4B-Realtime-2602: HF transformers'
`VoxtralRealtimeForConditionalGeneration` built from a Mistral-format checkpoint directory.

Written for the parity tests from HF's own documentation of the format (config classes,
module names, the q/k permutation of its Mistral converters); never imported by the package.

Two differences between the formats matter:
- key names (`layers.N.attention.wq` -> `model.language_model.layers.N.self_attn.q_proj`, ...);
- rotary layout: Mistral rotates interleaved pairs (x[2i], x[2i+1]), HF rotates the halves
  (x[i], x[i + D/2]). Permuting the output rows of wq / wk (and the wq bias) within each
  head, pair-major -> half-major, makes HF's half-split rotation compute the same thing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

ENC = "mm_streams_embeddings.embedding_module."

# Mistral checkpoint key (regex) -> HF module path, first match wins.
_KEY_MAP = [
    (r"^norm\.weight$", r"model.language_model.norm.weight"),
    (r"^layers\.(\d+)\.attention_norm\.weight$", r"model.language_model.layers.\1.input_layernorm.weight"),
    (r"^layers\.(\d+)\.ffn_norm\.weight$", r"model.language_model.layers.\1.post_attention_layernorm.weight"),
    (r"^layers\.(\d+)\.attention\.w([qkvo])\.weight$", r"model.language_model.layers.\1.self_attn.\2_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w1\.weight$", r"model.language_model.layers.\1.mlp.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w2\.weight$", r"model.language_model.layers.\1.mlp.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w3\.weight$", r"model.language_model.layers.\1.mlp.up_proj.weight"),
    (r"^layers\.(\d+)\.ada_rms_norm_t_cond\.0\.weight$", r"model.language_model.layers.\1.ada_rms_norm.linear1.weight"),
    (r"^layers\.(\d+)\.ada_rms_norm_t_cond\.2\.weight$", r"model.language_model.layers.\1.ada_rms_norm.linear2.weight"),
    (rf"^{ENC}tok_embeddings\.weight$", r"model.language_model.embed_tokens.weight"),
    (rf"^{ENC}audio_language_projection\.0\.weight$", r"model.multi_modal_projector.linear_1.weight"),
    (rf"^{ENC}audio_language_projection\.2\.weight$", r"model.multi_modal_projector.linear_2.weight"),
    (rf"^{ENC}whisper_encoder\.conv_layers\.0\.conv\.(weight|bias)$", r"model.audio_tower.embedder.conv1.\1"),
    (rf"^{ENC}whisper_encoder\.conv_layers\.1\.conv\.(weight|bias)$", r"model.audio_tower.embedder.conv2.\1"),
    (rf"^{ENC}whisper_encoder\.transformer\.norm\.weight$", r"model.audio_tower.norm.weight"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.attention\.w([qkvo])\.(weight|bias)$",
     r"model.audio_tower.layers.\1.self_attn.\2_proj.\3"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.attention_norm\.weight$",
     r"model.audio_tower.layers.\1.self_attn_layer_norm.weight"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.ffn_norm\.weight$",
     r"model.audio_tower.layers.\1.final_layer_norm.weight"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w1\.(weight|bias)$",
     r"model.audio_tower.layers.\1.mlp.gate_proj.\2"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w2\.(weight|bias)$",
     r"model.audio_tower.layers.\1.mlp.down_proj.\2"),
    (rf"^{ENC}whisper_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w3\.(weight|bias)$",
     r"model.audio_tower.layers.\1.mlp.up_proj.\2"),
]  # fmt: skip


def hf_key(mistral_key: str) -> str:
    for pattern, replacement in _KEY_MAP:
        new, n = re.subn(pattern, replacement, mistral_key)
        if n:
            return new
    raise KeyError(f"no HF name for checkpoint tensor {mistral_key!r}")


def interleaved_to_half_split(t: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorders the output rows of a q/k projection (weight [H*D, in] or bias [H*D]) so
    that, in each head, row 2i goes to i and row 2i+1 to i + D/2."""
    rest = t.shape[1:]
    d = t.shape[0] // n_heads
    return t.reshape(n_heads, d // 2, 2, *rest).transpose(1, 2).reshape(t.shape)


def hf_config(params: dict, *, encoder_sliding_window: int | None = None):
    """VoxtralRealtimeConfig from a params.json dict (eager attention, fp32).

    `encoder_sliding_window` overrides the encoder's window (e.g. a huge one, to show
    what the window changes)."""
    from transformers import VoxtralRealtimeConfig

    enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
    if params["ada_rms_norm_t_cond_dim"] != 32:
        raise ValueError("HF's ada-norm hard-codes a 32-wide bottleneck: ada_rms_norm_t_cond_dim must be 32")
    if enc["n_kv_heads"] != enc["n_heads"]:
        raise ValueError("HF's encoder has no GQA: encoder n_kv_heads must equal n_heads")
    text_config = {
        "model_type": "voxtral_realtime_text",
        "vocab_size": params["vocab_size"],
        "hidden_size": params["dim"],
        "intermediate_size": params["hidden_dim"],
        "num_hidden_layers": params["n_layers"],
        "num_attention_heads": params["n_heads"],
        "num_key_value_heads": params["n_kv_heads"],
        "head_dim": params["head_dim"],
        "rms_norm_eps": params["norm_eps"],
        "rope_parameters": {"rope_type": "default", "rope_theta": params["rope_theta"]},
        "sliding_window": params["sliding_window"],
        "max_position_embeddings": params.get("model_max_length", 131072),
        "tie_word_embeddings": True,
    }
    audio_config = {
        "model_type": "voxtral_realtime_encoder",
        "hidden_size": enc["dim"],
        "intermediate_size": enc["hidden_dim"],
        "num_hidden_layers": enc["n_layers"],
        "num_attention_heads": enc["n_heads"],
        "head_dim": enc["head_dim"],
        "num_mel_bins": enc["audio_encoding_args"]["num_mel_bins"],
        "rms_norm_eps": enc["norm_eps"],
        "rope_parameters": {"rope_type": "default", "rope_theta": enc["rope_theta"]},
        "sliding_window": enc["sliding_window"] if encoder_sliding_window is None else encoder_sliding_window,
    }
    config = VoxtralRealtimeConfig(
        audio_config=audio_config,
        text_config=text_config,
        downsample_factor=params["multimodal"]["whisper_model_args"]["downsample_args"]["downsample_factor"],
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    config.audio_config._attn_implementation = "eager"
    return config


def hf_state_dict(mistral: dict[str, torch.Tensor], params: dict) -> dict[str, torch.Tensor]:
    """Mistral-format tensors -> HF names and rotary layout (plus the tied lm_head)."""
    enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
    heads = {
        ("language_model", "q"): params["n_heads"],
        ("language_model", "k"): params["n_kv_heads"],
        ("audio_tower", "q"): enc["n_heads"],
        ("audio_tower", "k"): enc["n_heads"],
    }
    out = {}
    for key, tensor in mistral.items():
        new = hf_key(key)
        m = re.search(r"(language_model|audio_tower)\.layers\.\d+\.self_attn\.([qk])_proj\.", new)
        if m:
            tensor = interleaved_to_half_split(tensor, heads[(m.group(1), m.group(2))])
        out[new] = tensor
    out["lm_head.weight"] = out["model.language_model.embed_tokens.weight"]
    return out


def load_hf_model(checkpoint_dir: str | Path, *, encoder_sliding_window: int | None = None):
    """`VoxtralRealtimeForConditionalGeneration` in fp32 with the checkpoint's weights."""
    from safetensors.torch import load_file
    from transformers import VoxtralRealtimeForConditionalGeneration

    checkpoint_dir = Path(checkpoint_dir)
    params = json.loads((checkpoint_dir / "params.json").read_text())
    config = hf_config(params, encoder_sliding_window=encoder_sliding_window)
    tensors = {k: v.to(torch.float32) for k, v in load_file(checkpoint_dir / "consolidated.safetensors").items()}
    model = VoxtralRealtimeForConditionalGeneration(config)
    model.load_state_dict(hf_state_dict(tensors, params), strict=True)
    model.tie_weights()
    return model.eval().requires_grad_(False)


def reference_request(tekken_json: Path, wav: Path) -> tuple[list[int], "torch.Tensor"]:
    """(prompt ids, log-mel [1, 128, 8n]) of mistral_common's offline transcription request
    for `wav` (left/right padded per the stream schedule), mel by HF's feature extractor."""
    from mistral_common.protocol.transcription.request import TranscriptionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    from transformers import VoxtralRealtimeFeatureExtractor

    tokenizer = MistralTokenizer.from_file(str(tekken_json))
    req = tokenizer.encode_transcription(TranscriptionRequest(audio=wav.read_bytes(), streaming="offline"))
    (audio,) = req.audios
    mel = VoxtralRealtimeFeatureExtractor()(audio.audio_array, sampling_rate=16000, return_tensors="pt").input_features
    return req.tokens, mel
