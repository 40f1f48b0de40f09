"""What a checkpoint holds: the params.json contents and the tensors derived from them.

``full`` reproduces the released Mistral-format files of Voxtral-Mini-4B-Realtime-2602
(711 tensors, 8.86 GB) and Voxtral-4B-TTS-2603 (386 tensors, 8.0 GB): same params.json
fields and nesting, same tensor names and shapes. ``tiny`` keeps every structural
feature (GQA 4:1 with q width != model width, conv stem, 4x downsample, ada-norm
t_cond, tied embeddings, 3 acoustic layers, 37 codebooks of the real sizes, 4 codec
stages with the real kernels/strides, 8 ALiBi heads, the real vocabulary, mel bins,
patch size and attention windows) and shrinks only widths and depths, so a test can
export it in seconds. Field sources: the shared Voxtral facts sheet (voxtral-facts.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SIZES = ("tiny", "full")

# Preset voices of Voxtral-4B-TTS-2603, in the id order of params.json's `voice` map.
TTS_VOICES = (
    "casual_female", "casual_male", "cheerful_female", "neutral_female", "neutral_male",
    "pt_male", "pt_female", "nl_male", "nl_female", "it_male", "it_female", "fr_male",
    "fr_female", "es_male", "es_female", "de_male", "de_female", "ar_male", "hi_male",
    "hi_female",
)  # fmt: skip

# Codebook ids 0 and 1 are EMPTY_AUDIO and END_AUDIO; real codes are shifted by 2.
_N_SPECIAL_CODES = 2


@dataclass(frozen=True)
class Normal:
    """Elements drawn from N(mean, std^2)."""

    std: float
    mean: float = 0.0


@dataclass(frozen=True)
class Uniform:
    """Elements drawn uniformly from [low, high)."""

    low: float
    high: float


@dataclass(frozen=True)
class TensorSpec:
    """One bf16 tensor of consolidated.safetensors and how to fill it."""

    name: str
    shape: tuple[int, ...]
    init: Normal | Uniform

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class _Transformer:
    """The widths of one transformer stack."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int


# Widths per size; every other field keeps its real value in both sizes. Tiny attention
# widths (heads x head_dim) differ from the model width, as in the real LM (4096 vs
# 3072) and encoder (2048 vs 1280), so a transposed wq/wo cannot go unnoticed.
_STT = {
    "full": {
        "lm": _Transformer(dim=3072, n_layers=26, n_heads=32, n_kv_heads=8, head_dim=128, hidden_dim=9216),
        "encoder": _Transformer(dim=1280, n_layers=32, n_heads=32, n_kv_heads=32, head_dim=64, hidden_dim=5120),
        "t_cond_dim": 32,
    },
    "tiny": {
        "lm": _Transformer(dim=64, n_layers=2, n_heads=8, n_kv_heads=2, head_dim=16, hidden_dim=192),
        "encoder": _Transformer(dim=32, n_layers=2, n_heads=4, n_kv_heads=4, head_dim=16, hidden_dim=128),
        "t_cond_dim": 32,  # HF transformers hard-codes 32 (parity tests use it)
    },
}
_TTS = {
    "full": {
        "lm": _Transformer(dim=3072, n_layers=26, n_heads=32, n_kv_heads=8, head_dim=128, hidden_dim=9216),
        "acoustic": _Transformer(dim=3072, n_layers=3, n_heads=32, n_kv_heads=8, head_dim=128, hidden_dim=9216),
        "codec": _Transformer(dim=1024, n_layers=2, n_heads=8, n_kv_heads=8, head_dim=128, hidden_dim=4096),
        "semantic_dim": 256,
        "voice_frames_base": 146,  # + voice id: casual_male (id 1) gets its real 147
    },
    "tiny": {
        "lm": _Transformer(dim=64, n_layers=2, n_heads=8, n_kv_heads=2, head_dim=16, hidden_dim=192),
        "acoustic": _Transformer(dim=64, n_layers=3, n_heads=8, n_kv_heads=2, head_dim=16, hidden_dim=192),
        "codec": _Transformer(dim=128, n_layers=2, n_heads=8, n_kv_heads=8, head_dim=16, hidden_dim=512),
        "semantic_dim": 32,
        "voice_frames_base": 6,
    },
}


def _lm_fields(lm: _Transformer) -> dict:
    return {
        "dim": lm.dim,
        "n_layers": lm.n_layers,
        "head_dim": lm.head_dim,
        "hidden_dim": lm.hidden_dim,
        "n_heads": lm.n_heads,
        "n_kv_heads": lm.n_kv_heads,
        "use_biases": False,
        "causal": True,
        "rope_theta": 1_000_000.0,
        "norm_eps": 1e-05,
        "vocab_size": 131072,
        "model_parallel": 1,
        "tied_embeddings": True,
    }


def stt_params(size: str) -> dict:
    """params.json of Voxtral-Mini-4B-Realtime-2602 (``full``) or its tiny twin."""
    s = _STT[size]
    enc = s["encoder"]
    return {
        **_lm_fields(s["lm"]),
        "sliding_window": 8192,
        "model_max_length": 131072,
        "multimodal": {
            "whisper_model_args": {
                "encoder_args": {
                    "audio_encoding_args": {
                        "sampling_rate": 16000,
                        "frame_rate": 12.5,
                        "num_mel_bins": 128,
                        "hop_length": 160,
                        "window_size": 400,
                        "chunk_length_s": None,
                        "global_log_mel_max": 1.5,
                        "transcription_format": "streaming",
                    },
                    "dim": enc.dim,
                    "n_layers": enc.n_layers,
                    "head_dim": enc.head_dim,
                    "hidden_dim": enc.hidden_dim,
                    "n_heads": enc.n_heads,
                    "vocab_size": 131072,
                    "n_kv_heads": enc.n_kv_heads,
                    "use_biases": True,
                    "use_cache": False,
                    "rope_theta": 1_000_000.0,
                    "causal": True,
                    "norm_eps": 1e-05,
                    "pos_embed": "rope",
                    "max_source_positions": None,
                    "ffn_type": "swiglu",
                    "norm_type": "rms_norm",
                    "sliding_window": 750,
                },
                "downsample_args": {"downsample_factor": 4},
            }
        },
        "ada_rms_norm_t_cond": True,
        "ada_rms_norm_t_cond_dim": s["t_cond_dim"],
    }


def tts_params(size: str) -> dict:
    """params.json of Voxtral-4B-TTS-2603 (``full``) or its tiny twin."""
    s = _TTS[size]
    at, codec = s["acoustic"], s["codec"]
    return {
        **_lm_fields(s["lm"]),
        "multimodal": {
            "bos_token_id": 1,
            "audio_model_args": {
                "semantic_codebook_size": 8192,
                "acoustic_codebook_size": 21,
                "n_acoustic_codebook": 36,
                "audio_encoding_args": {
                    "codebook_pattern": "parallel",
                    "interleave_audio_tokens_per_segment": 8192,
                    "interleave_text_tokens_per_segment": 8192,
                    "single_trailing_segment": False,
                    "num_codebooks": 37,
                    "sampling_rate": 24000,
                    "frame_rate": 12.5,
                },
                "audio_token_id": 24,
                "begin_audio_token_id": 25,
                "input_embedding_concat_type": "sum",
                "acoustic_transformer_args": {
                    "input_dim": s["lm"].dim,
                    "dim": at.dim,
                    "n_layers": at.n_layers,
                    "head_dim": at.head_dim,
                    "hidden_dim": at.hidden_dim,
                    "n_heads": at.n_heads,
                    "n_kv_heads": at.n_kv_heads,
                    "use_biases": False,
                    "rope_theta": 10000.0,
                    "sigma": 1e-05,
                    "sigma_max": 1.0,
                },
                "p_uncond": 0.0,
                "text_feature_bugged": False,
                "condition_dropped_token_id": 42,
            },
            "audio_tokenizer_args": {
                "channels": 1,
                "sampling_rate": 24000,
                "pretransform_patch_size": 240,
                "patch_proj_kernel_size": 7,
                "semantic_codebook_size": 8192,
                "semantic_dim": s["semantic_dim"],
                "acoustic_codebook_size": 21,
                "acoustic_dim": 36,
                "conv_weight_norm": True,
                "causal": True,
                "attn_sliding_window_size": 16,
                "half_attn_window_upon_downsampling": True,
                "dim": codec.dim,
                "hidden_dim": codec.hidden_dim,
                "head_dim": codec.head_dim,
                "n_heads": codec.n_heads,
                "n_kv_heads": codec.n_kv_heads,
                "qk_norm_eps": 1e-06,
                "qk_norm": True,
                "use_biases": False,
                "norm_eps": 0.01,
                "layer_scale": True,
                "layer_scale_init": 0.01,
                "decoder_transformer_lengths_str": ",".join([str(codec.n_layers)] * 4),
                "decoder_convs_kernels_str": "3,4,4,4",
                "decoder_convs_strides_str": "1,2,2,2",
                "voice": {name: i for i, name in enumerate(TTS_VOICES)},
            },
        },
        "max_seq_len": 65536,
        "model_type": "voxtral_tts",
        "max_position_embeddings": 128000,
    }


def tts_voice_frames(size: str) -> dict[str, int]:
    """Voice name -> rows N of its [N, dim] embedding (= its count of [AUDIO] tokens).

    Only casual_male's 147 is public; the others are made up, one apart so that a
    voice mix-up changes the prompt length.
    """
    base = _TTS[size]["voice_frames_base"]
    return {name: base + i for i, name in enumerate(TTS_VOICES)}


def stt_tekken_audio(params: dict) -> dict:
    """The `audio` block of tekken.json (mistral_common AudioConfig, streaming)."""
    audio = params["multimodal"]["whisper_model_args"]["encoder_args"]["audio_encoding_args"]
    return {
        "sampling_rate": audio["sampling_rate"],
        "frame_rate": audio["frame_rate"],
        "audio_encoding_config": {
            "num_mel_bins": audio["num_mel_bins"],
            "hop_length": audio["hop_length"],
            "window_size": audio["window_size"],
        },
        "chunk_length_s": None,
        "transcription_format": "streaming",
        "transcription_delay_ms": 480,  # 6 delay tokens of 80 ms
        "streaming_look_ahead_ms": 2.5,
        "streaming_look_back_ms": 52.5,
        "streaming_n_left_pad_tokens": 32,
    }


def tts_tekken_audio(params: dict, voice_frames: dict[str, int]) -> dict:
    """The `audio` block of tekken.json for speech synthesis with preset voices."""
    audio = params["multimodal"]["audio_model_args"]["audio_encoding_args"]
    return {
        "sampling_rate": audio["sampling_rate"],
        "frame_rate": audio["frame_rate"],
        # Required by AudioConfig; only reference-audio requests (not supported by
        # the public checkpoint) would use it.
        "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
        "voice_num_audio_tokens": voice_frames,
    }


# --- tensors ---------------------------------------------------------------------------
# Scales keep activations O(1) at any width, so tiny and full behave alike: linears
# and convs N(0, 1/fan_in); embeddings and voices N(0, 1); norm weights around 1;
# biases small. bf16 keeps about 3 significant digits.


def _linear(name: str, out_features: int, in_features: int) -> TensorSpec:
    return TensorSpec(name, (out_features, in_features), Normal(in_features**-0.5))


def _norm(name: str, dim: int) -> TensorSpec:
    return TensorSpec(name, (dim,), Normal(0.02, mean=1.0))


def _bias(name: str, dim: int) -> TensorSpec:
    return TensorSpec(name, (dim,), Normal(0.02))


def _embedding(name: str, rows: int, dim: int) -> TensorSpec:
    return TensorSpec(name, (rows, dim), Normal(1.0))


def _weight_norm(prefix: str, shape: tuple[int, int, int], gain: float = 1.0) -> list[TensorSpec]:
    """A weight-normed conv: g [shape[0], 1, 1] and direction v ``shape``.

    The effective weight is g * v / |v| (norm over all but dim 0), so v's scale does
    not matter and g ~ gain gives rows of norm ~gain, i.e. unit-scale outputs for gain 1.
    """
    return [
        TensorSpec(f"{prefix}.parametrizations.weight.original0", (shape[0], 1, 1), Normal(0.02 * gain, mean=gain)),
        TensorSpec(f"{prefix}.parametrizations.weight.original1", shape, Normal(1.0)),
    ]


def _attention_and_ffn(prefix: str, t: _Transformer) -> list[TensorSpec]:
    """wq/wk/wv/wo [heads*head_dim <-> dim], SwiGLU w1/w3 [hidden, dim], w2 [dim, hidden]."""
    dim, q, kv = t.dim, t.n_heads * t.head_dim, t.n_kv_heads * t.head_dim
    return [
        _norm(f"{prefix}.attention_norm.weight", dim),
        _linear(f"{prefix}.attention.wq.weight", q, dim),
        _linear(f"{prefix}.attention.wk.weight", kv, dim),
        _linear(f"{prefix}.attention.wv.weight", kv, dim),
        _linear(f"{prefix}.attention.wo.weight", dim, q),
        _norm(f"{prefix}.ffn_norm.weight", dim),
        _linear(f"{prefix}.feed_forward.w1.weight", t.hidden_dim, dim),
        _linear(f"{prefix}.feed_forward.w2.weight", dim, t.hidden_dim),
        _linear(f"{prefix}.feed_forward.w3.weight", t.hidden_dim, dim),
    ]


def _transformer_of(args: dict, n_layers: int | None = None) -> _Transformer:
    """The widths of a params.json transformer block (the codec gives its depths per stage)."""
    return _Transformer(
        dim=args["dim"],
        n_layers=args["n_layers"] if n_layers is None else n_layers,
        n_heads=args["n_heads"],
        n_kv_heads=args["n_kv_heads"],
        head_dim=args["head_dim"],
        hidden_dim=args["hidden_dim"],
    )


def _round_up(n: int, multiple: int) -> int:
    return multiple * math.ceil(n / multiple)


def stt_tensors(params: dict) -> list[TensorSpec]:
    """Every tensor of the realtime STT checkpoint, as derived from its params.json."""
    lm = _transformer_of(params)
    whisper = params["multimodal"]["whisper_model_args"]
    enc_args = whisper["encoder_args"]
    enc = _transformer_of(enc_args)
    n_mels = enc_args["audio_encoding_args"]["num_mel_bins"]
    pooled = enc.dim * whisper["downsample_args"]["downsample_factor"]
    p = "mm_streams_embeddings.embedding_module."
    w = p + "whisper_encoder."

    tensors = [
        _embedding(p + "tok_embeddings.weight", params["vocab_size"], lm.dim),  # tied LM head
        # Causal conv stem: [out, in, kernel 3]; strides 1 and 2 live in the code.
        TensorSpec(w + "conv_layers.0.conv.weight", (enc.dim, n_mels, 3), Normal((n_mels * 3) ** -0.5)),
        _bias(w + "conv_layers.0.conv.bias", enc.dim),
        TensorSpec(w + "conv_layers.1.conv.weight", (enc.dim, enc.dim, 3), Normal((enc.dim * 3) ** -0.5)),
        _bias(w + "conv_layers.1.conv.bias", enc.dim),
    ]
    q = enc.n_heads * enc.head_dim
    for i in range(enc.n_layers):
        layer = f"{w}transformer.layers.{i}"
        tensors += _attention_and_ffn(layer, enc)
        # Biases on wq, wv, wo and w2 only (none on wk, w1, w3).
        tensors += [
            _bias(f"{layer}.attention.wq.bias", q),
            _bias(f"{layer}.attention.wv.bias", q),
            _bias(f"{layer}.attention.wo.bias", enc.dim),
            _bias(f"{layer}.feed_forward.w2.bias", enc.dim),
        ]
    tensors += [
        _norm(w + "transformer.norm.weight", enc.dim),
        # Adapter: 4 pooled encoder frames [4 * enc_dim] -> Linear -> GELU -> Linear.
        _linear(p + "audio_language_projection.0.weight", lm.dim, pooled),
        _linear(p + "audio_language_projection.2.weight", lm.dim, lm.dim),
    ]
    t_cond = params["ada_rms_norm_t_cond_dim"]
    for i in range(lm.n_layers):
        tensors += _attention_and_ffn(f"layers.{i}", lm)
        # FFN-norm scale 1 + W2(GELU(W1 t_cond)): W1 [t_cond, dim], W2 [dim, t_cond].
        tensors += [
            _linear(f"layers.{i}.ada_rms_norm_t_cond.0.weight", t_cond, lm.dim),
            _linear(f"layers.{i}.ada_rms_norm_t_cond.2.weight", lm.dim, t_cond),
        ]
    tensors.append(_norm("norm.weight", lm.dim))
    return tensors


def tts_tensors(params: dict) -> list[TensorSpec]:
    """Every tensor of the TTS checkpoint, as derived from its params.json."""
    lm = _transformer_of(params)
    audio = params["multimodal"]["audio_model_args"]
    at = _transformer_of(audio["acoustic_transformer_args"])
    codec_args = params["multimodal"]["audio_tokenizer_args"]
    lengths = [int(n) for n in codec_args["decoder_transformer_lengths_str"].split(",")]
    codec = _transformer_of(codec_args, n_layers=sum(lengths))
    n_acoustic = audio["n_acoustic_codebook"]
    semantic_size = audio["semantic_codebook_size"]
    # One embedding table for all 37 codebooks (offsets per codebook, each with the 2
    # special codes), rows padded to a multiple of 128: 8194 + 36 * 23 -> 9088.
    codebook_rows = _round_up(
        semantic_size + _N_SPECIAL_CODES + n_acoustic * (audio["acoustic_codebook_size"] + _N_SPECIAL_CODES), 128
    )

    tensors = [
        _embedding("mm_audio_embeddings.tok_embeddings.weight", params["vocab_size"], lm.dim),
        _embedding("mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight", codebook_rows, lm.dim),
    ]
    for i in range(lm.n_layers):
        tensors += _attention_and_ffn(f"layers.{i}", lm)
    tensors.append(_norm("norm.weight", lm.dim))

    # Flow-matching head: 3 tokens [x_t (36), time, LLM hidden] through bidirectional
    # layers; semantic logits over 8192 + 2 codes padded to 8320.
    a = "acoustic_transformer."
    tensors += [
        _linear(a + "input_projection.weight", at.dim, n_acoustic),
        _linear(a + "time_projection.weight", at.dim, at.dim),
        _linear(a + "llm_projection.weight", at.dim, lm.dim),
        _linear(a + "semantic_codebook_output.weight", _round_up(semantic_size + _N_SPECIAL_CODES, 128), at.dim),
        _linear(a + "acoustic_codebook_output.weight", n_acoustic, at.dim),
    ]
    for i in range(at.n_layers):
        tensors += _attention_and_ffn(f"{a}layers.{i}", at)
    tensors.append(_norm(a + "norm.weight", at.dim))

    # Codec decoder: blocks alternate conv (even) and transformer stage (odd): conv
    # k3 s1 latent -> dim, then stage, ConvTranspose k4 s2, stage, ... (4 stages).
    c = "audio_tokenizer."
    kernels = [int(k) for k in codec_args["decoder_convs_kernels_str"].split(",")]
    latent = codec_args["semantic_dim"] + codec_args["acoustic_dim"]
    tensors += _weight_norm(f"{c}decoder_blocks.0.conv", (codec.dim, latent, kernels[0]))
    q_width, kv_width = codec.n_heads * codec.head_dim, codec.n_kv_heads * codec.head_dim
    for stage, n_layers in enumerate(lengths):
        block = 2 * stage + 1
        for j in range(n_layers):
            layer = f"{c}decoder_blocks.{block}.layers.{j}"
            tensors += _attention_and_ffn(layer, codec)
            tensors += [
                _norm(f"{layer}.attention.q_norm.weight", q_width),
                _norm(f"{layer}.attention.k_norm.weight", kv_width),
                # Learned layer scale; 0.1 (the reference's init for early layers)
                # rather than params' 0.01 so the transformer visibly contributes.
                TensorSpec(f"{layer}.attention_scale", (codec.dim,), Normal(0.02, mean=0.1)),
                TensorSpec(f"{layer}.ffn_scale", (codec.dim,), Normal(0.02, mean=0.1)),
            ]
        if stage + 1 < len(lengths):
            # ConvTranspose1d weight is [in, out, kernel]; weight norm over dim 0 (in).
            tensors += _weight_norm(f"{c}decoder_blocks.{block + 1}.conv", (codec.dim, codec.dim, kernels[stage + 1]))
    patch = codec_args["pretransform_patch_size"]
    # Output conv k7 -> 240 samples per upsampled step (12.5 Hz x 8 x 240 = 24 kHz);
    # gain 0.1 gives a waveform of amplitude ~0.1.
    tensors += _weight_norm(f"{c}output_proj.conv", (patch, codec.dim, codec_args["patch_proj_kernel_size"]), gain=0.1)
    # VQ codebook = embedding_sum / cluster_usage: [8192, semantic_dim] / [8192].
    tensors += [
        TensorSpec(f"{c}quantizer.semantic_codebook.cluster_usage", (semantic_size,), Uniform(0.5, 2.0)),
        TensorSpec(
            f"{c}quantizer.semantic_codebook.embedding_sum",
            (semantic_size, codec_args["semantic_dim"]),
            Normal(1.0),
        ),
    ]
    return tensors
