"""Voxtral-4B-TTS-2603 as plain nn.Modules. Module names are Mistral's checkpoint keys.

    prompt embeddings [1, T, dim] --LM (layers, norm)--> hidden states [1, T, dim]
    hidden h [B, dim] --semantic_codebook_output, masked argmax--> semantic code      (1 per frame)
    hidden h, noise [B, 36] --7 Euler steps of predict_velocity (CFG 1.2)--> 36 acoustic codes
    37 codes --audio-code embedding (37 summed lookups)--> next LM input [B, dim]
    codes [B, T, 37] --codec decoder--> audio [B, T * 1920] at 24 kHz (12.5 frames per second)

Every code carries a +2 shift: 0 is EMPTY_AUDIO, 1 END_AUDIO, real codes start at 2.
The random noise is an input: the generator lives in the C++ runner, reproducible bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from voxtral_native.export.models.layers import FeedForward, RingAttention, RMSNorm, rope_cos_sin, sinusoidal_embedding
from voxtral_native.export.tts_config import N_SPECIAL_CODES, CodecConfig, TtsConfig

EMPTY_AUDIO = 0
END_AUDIO = 1
CFG_ALPHA = 1.2  # classifier-free guidance: v = 1.2 * v_cond - 0.2 * v_uncond
NOISE_SCALE = 1.0  # x0 = NOISE_SCALE * N(0, 1)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# --- LM backbone -------------------------------------------------------------------------


class LmLayer(nn.Module):
    """The speech-to-text decoder layer without the ada norm: pre-norm GQA + SwiGLU."""

    def __init__(self, config: TtsConfig, window: int, max_tokens: int):
        super().__init__()
        cfg = dataclasses.replace(config.lm, sliding_window=window)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = RingAttention(cfg, max_tokens, biases=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.hidden_dim, w2_bias=False)

    def forward(self, x, start_pos, cos, sin):
        x = x + self.attention(self.attention_norm(x), start_pos, cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class AudioCodeEmbedding(nn.Module):
    """One table for all 37 codebooks: codebook c's code k is row offsets[c] + k.

    Sizes [8194, 23 x 36] (special codes included) sum to 9022 rows, padded to a multiple
    of 128 (9088). A frame's embedding is the sum of its 37 rows.
    """

    def __init__(self, config: TtsConfig):
        super().__init__()
        sizes = config.codebook_sizes
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]  # a constant, not a loaded buffer
        self.embeddings = nn.Embedding(_round_up(sum(sizes), 128), config.lm.dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [..., 37] int64 (shifted) -> [..., dim]."""
        offsets = torch.tensor(self.offsets, dtype=codes.dtype, device=codes.device)
        return self.embeddings(codes + offsets).sum(dim=-2)


class AudioEmbeddings(nn.Module):
    """Mistral's `mm_audio_embeddings`: the text token table and the audio-code table."""

    def __init__(self, config: TtsConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.lm.dim)
        self.audio_codebook_embeddings = AudioCodeEmbedding(config)


# --- flow-matching acoustic transformer -------------------------------------------------


class BidirectionalAttention(nn.Module):
    """GQA over a handful of tokens, no mask and no positional encoding: the 3 tokens
    [x_t, time, LLM hidden] are told apart by their projections, not their order."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, first_only: bool = False) -> torch.Tensor:
        """x [B, T, dim] -> [B, T, dim], or [B, 1, dim] for token 0 alone when `first_only`
        (every token is still a key and a value)."""
        q = self.wq(x[:, :1] if first_only else x)
        return self.wo(grouped_attention(q, self.wk(x), self.wv(x), self.n_kv_heads, self.head_dim))


def grouped_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_kv_heads: int, head_dim: int, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """GQA over whole sequences: q [B, Tq, H * D], k and v [B, T, Hkv * D] -> [B, Tq, H * D]
    (Tq < T: the first Tq tokens' outputs alone, e.g. the acoustic transformer's last layer).

    Query head h reads kv head h // (H / Hkv). The query heads of one group are stacked
    along Tq ([B, Hkv, G * Tq, D]) instead of repeating k and v per head: the same scores
    with no expand, which XNNPACK does not take (it would split the graph per layer).
    `bias` [G * Tq, T] or [Hkv, G * Tq, T] is added to the scores (ALiBi, -inf masks).
    """
    b, tq, _ = q.shape
    t = k.shape[1]
    group = q.shape[-1] // (n_kv_heads * head_dim)
    q = q.view(b, tq, n_kv_heads, group, head_dim).permute(0, 2, 3, 1, 4).reshape(b, n_kv_heads, group * tq, head_dim)
    k = k.view(b, t, n_kv_heads, head_dim).transpose(1, 2)  # [B, Hkv, T, D]
    v = v.view(b, t, n_kv_heads, head_dim).transpose(1, 2)
    # 3-D bmm over B * Hkv (a 4-D matmul is decomposed with expands, which XNNPACK does not take)
    q, k, v = (x.reshape(b * n_kv_heads, -1, head_dim) for x in (q, k, v))
    scores = torch.bmm(q, k.transpose(1, 2)) * head_dim**-0.5  # [B * Hkv, G * Tq, T]
    if bias is not None:
        scores = (scores.view(b, n_kv_heads, group * tq, t) + bias).view(b * n_kv_heads, group * tq, t)
    out = torch.bmm(scores.softmax(dim=-1), v)  # [B * Hkv, G * Tq, D]
    out = out.view(b, n_kv_heads, group, tq, head_dim).permute(0, 3, 1, 2, 4)  # [B, Tq, Hkv, G, D]
    return out.reshape(b, tq, n_kv_heads * group * head_dim)


class AcousticLayer(nn.Module):
    def __init__(self, config: TtsConfig):
        super().__init__()
        cfg = config.acoustic
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = BidirectionalAttention(cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.hidden_dim, w2_bias=False)

    def forward(self, x: torch.Tensor, first_only: bool = False) -> torch.Tensor:
        """x [B, T, dim] -> [B, T, dim], or token 0's row [B, 1, dim] alone when `first_only`."""
        h = self.attention(self.attention_norm(x), first_only)
        x = (x[:, :1] if first_only else x) + h
        return x + self.feed_forward(self.ffn_norm(x))


def quantize_acoustic(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Flow-matching output x [B, 36] float -> shifted acoustic codes [B, 36] int64.

    clamp(x, -1, 1), scale to [0, levels - 1] as (x + 1) / 2 * (levels - 1) (this order of
    operations, so that another implementation gets bit-identical values), round, + 2.
    Ties: torch.round rounds half to even (2.5 -> 2, 7.5 -> 8), NOT half up as C's
    (int)(v + 0.5); the C++ runner must use the same rule (rint / nearbyint).
    """
    scaled = (x.clamp(-1.0, 1.0) + 1) / 2 * (levels - 1)
    return torch.round(scaled).to(torch.int64) + N_SPECIAL_CODES


class AcousticTransformer(nn.Module):
    """Mistral's `acoustic_transformer`: the semantic head and the flow-matching velocity."""

    def __init__(self, config: TtsConfig):
        super().__init__()
        cfg = config.acoustic
        self.dim, self.levels = cfg.dim, config.acoustic_levels
        self.n_steps = config.n_decoding_steps
        self.semantic_size = config.semantic_codebook_size
        self.input_projection = nn.Linear(config.n_acoustic_codebooks, cfg.dim, bias=False)
        self.time_projection = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.llm_projection = nn.Linear(config.lm.dim, cfg.dim, bias=False)
        # 8192 + 2 logits padded to a multiple of 128 (8320); the padding is masked below.
        self.semantic_codebook_output = nn.Linear(
            cfg.dim, _round_up(config.semantic_codebook_size + N_SPECIAL_CODES, 128), bias=False
        )
        self.acoustic_codebook_output = nn.Linear(cfg.dim, config.n_acoustic_codebooks, bias=False)
        self.layers = nn.ModuleList(AcousticLayer(config) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def semantic_logits(self, h: torch.Tensor) -> torch.Tensor:
        """h [B, dim] -> float32 logits [B, 8320] with EMPTY_AUDIO (0) and every index past the
        real codes (>= 8194: padding rows that were never trained) set to -inf; END_AUDIO (1)
        stays, it ends the utterance."""
        logits = self.semantic_codebook_output(h).float()
        index = torch.arange(logits.shape[-1], device=logits.device)
        masked = (index == EMPTY_AUDIO) | (index >= self.semantic_size + N_SPECIAL_CODES)
        return logits.masked_fill(masked, float("-inf"))

    def semantic_code(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy semantic code [B] int64 (shifted; 1 = END_AUDIO)."""
        return self.semantic_logits(h).argmax(dim=-1)

    def predict_velocity(self, x_t: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x_t [B, 36], t [1] float in [0, 1] (one time for the batch), h [B, dim] -> velocity [B, 36]."""
        return self._velocity(x_t, self._time_token(t, h.shape[0], h.dtype), self.llm_projection(h))

    def _time_token(self, t: torch.Tensor, batch: int, dtype: torch.dtype) -> torch.Tensor:
        """[B, dim]: the projected sinusoidal embedding of t, one row per batch entry (a cat,
        not an expand, so XNNPACK keeps it in the delegate)."""
        time = self.time_projection(sinusoidal_embedding(t, self.dim).to(dtype))  # [1, dim]
        return torch.cat([time] * batch)

    def _velocity(self, x_t: torch.Tensor, time: torch.Tensor, llm: torch.Tensor) -> torch.Tensor:
        """x_t [B, 36] and the projected time [B, dim] and LLM [B, dim] tokens -> velocity [B, 36]."""
        tokens = torch.stack([self.input_projection(x_t.to(llm.dtype)), time, llm], dim=1)  # [B, 3, dim]
        # The velocity reads token 0 of the last layer alone, so that layer computes token 0's
        # query, attention output and feed-forward only ([B, 1, dim]; all 3 tokens stay keys and
        # values): the same numbers for 2/3 less of its work, ~20% less of the whole step's.
        for i, layer in enumerate(self.layers):
            tokens = layer(tokens, first_only=i == len(self.layers) - 1)
        return self.acoustic_codebook_output(self.norm(tokens)[:, 0])

    def euler_step(self, h: torch.Tensor, x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """One Euler step of the flow: h [B, dim], x [B, 36] at timesteps[step] -> x at
        timesteps[step + 1], with timesteps linspace(0, 1, n_steps + 1) and step [1] int64 in
        [0, n_steps). The velocity is evaluated conditioned on h and unconditioned (h = 0) as
        one batch of 2B, then mixed by CFG. One step per program call: unrolling the 7 steps in
        one method made XNNPACK's lowering hold a copy of the weights per step (full size:
        +3 GB at 1 step, +7.2 GB at 2, past 24 GB at 7; benchmarks/results/tts_export_full.md)."""
        b = h.shape[0]
        llm = self.llm_projection(torch.cat([h, torch.zeros_like(h)]))  # [2B, dim]: conditioned, unconditioned
        timesteps = torch.linspace(0, 1, self.n_steps + 1, device=h.device)
        t = timesteps.index_select(0, step)  # [1]
        dt = timesteps.index_select(0, step + 1) - t
        time = self._time_token(t, 2 * b, h.dtype)
        v = self._velocity(torch.cat([x, x]), time, llm)  # [2B, 36]
        v_cond, v_uncond = v[:b], v[b:]
        return x + (CFG_ALPHA * v_cond - (CFG_ALPHA - 1) * v_uncond) * dt.to(x.dtype)

    def flow(self, h: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Euler integration of the velocity from noise [B, 36] (standard normal) at t = 0 to
        x [B, 36] at t = 1: n_steps calls of euler_step."""
        x = noise.to(h.dtype) * NOISE_SCALE
        for i in range(self.n_steps):
            x = self.euler_step(h, x, torch.tensor([i], device=h.device))
        return x

    def acoustic_codes(self, h: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The whole flow-matching step of one frame: h [B, dim], noise [B, 36] -> [B, 36] int64
        shifted acoustic codes. (Whether the frame is emitted at all is the semantic code's
        business: END_AUDIO stops the loop before this frame reaches the codec.)"""
        return quantize_acoustic(self.flow(h, noise).float(), self.levels)


# --- codec decoder -----------------------------------------------------------------------


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """[H] r**i with r = 2**(-8/H), i = 0..H-1 (1, 1/2, ..., 1/128 for 8 heads): Mistral's
    vllm-omni code. ExecuTorch, mlx-audio and voxtral-tts.c use r**(i+1) (facts sheet, section 4)."""
    return (2.0 ** (-8.0 / n_heads)) ** torch.arange(n_heads, dtype=torch.float32)


class CausalConv(nn.Module):
    """Weight-normed Conv1d, stride 1, with kernel - 1 frames of left padding (`pad_mode`:
    replicate for the input conv, reflect for the output conv), so output t sees inputs <= t."""

    def __init__(self, c_in: int, c_out: int, kernel: int, pad_mode: str):
        super().__init__()
        self.conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(c_in, c_out, kernel, bias=False))
        self.pad, self.pad_mode = kernel - 1, pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C_in, L] -> [B, C_out, L]. Reflect padding needs L > kernel - 1."""
        return self.conv(F.pad(x, (self.pad, 0), mode=self.pad_mode))


class CausalConvTranspose(nn.Module):
    """Weight-normed ConvTranspose1d upsampling by `stride`; the last kernel - stride outputs
    (they would need later inputs to be complete) are trimmed: L in -> L * stride out.
    Its weight is [C_in, C_out, K] and the weight norm is over dim 0, i.e. per input channel."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.utils.parametrizations.weight_norm(nn.ConvTranspose1d(c_in, c_out, kernel, stride, bias=False))
        self.trim = kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)  # [B, C_out, (L - 1) * stride + K]
        return out[..., : out.shape[-1] - self.trim]


class CodecAttention(nn.Module):
    """Causal sliding-window attention with ALiBi and QK RMSNorm.

    Query i sees keys i - window .. i (window + 1 keys, as the ExecuTorch reference:
    rel_pos >= -window), each biased by slope_h * (j - i) <= 0: `band_bias` builds that
    as an additive [Hkv, G * L, L] bias (-inf outside the band) once per stage, and the
    scores are a plain L x L product (L <= 8 x 50 steps here). A band-only form needs
    unfold and masked_fill, which XNNPACK does not take.
    """

    def __init__(self, cfg: CodecConfig, window: int):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim, self.window = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, window
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        # Norms over the whole projection width (all heads at once), before the head split.
        self.q_norm = RMSNorm(cfg.n_heads * cfg.head_dim, cfg.qk_norm_eps)
        self.k_norm = RMSNorm(cfg.n_kv_heads * cfg.head_dim, cfg.qk_norm_eps)

    def band_bias(self, length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """[Hkv, G * L, L]: slope_h * (j - i) where i - window <= j <= i, else -inf; query
        head h = kv * G + g at row g * L + i (grouped_attention's layout)."""
        offset = torch.arange(length, device=device)[None, :] - torch.arange(length, device=device)[:, None]  # j - i
        in_band = (offset <= 0) & (offset >= -self.window)  # [L, L]
        slopes = alibi_slopes(self.n_heads).to(device)[:, None, None]  # [H, 1, 1]
        bias = torch.where(in_band, slopes * offset.to(torch.float32), float("-inf"))  # [H, L, L]
        return bias.to(dtype).reshape(self.n_kv_heads, -1, length)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, dim] -> [B, L, dim]; `bias` from band_bias (made here when not given)."""
        if bias is None:
            bias = self.band_bias(x.shape[1], x.dtype, x.device)
        q, k = self.q_norm(self.wq(x)), self.k_norm(self.wk(x))
        return self.wo(grouped_attention(q, k, self.wv(x), self.n_kv_heads, self.head_dim, bias))


class CodecLayer(nn.Module):
    """Pre-norm layer whose two residual branches are scaled by learned per-channel factors."""

    def __init__(self, cfg: CodecConfig, window: int):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = CodecAttention(cfg, window)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.hidden_dim, w2_bias=False)
        self.attention_scale = nn.Parameter(torch.ones(cfg.dim))  # [dim]
        self.ffn_scale = nn.Parameter(torch.ones(cfg.dim))

    def forward(self, x, bias=None):
        x = x + self.attention_scale * self.attention(self.attention_norm(x), bias)
        return x + self.ffn_scale * self.feed_forward(self.ffn_norm(x))


class CodecStage(nn.Module):
    """Transformer layers at one time resolution; x [B, dim, L] channels first, as the convs.
    Its layers share one window, so the attention bias is built once per stage."""

    def __init__(self, cfg: CodecConfig, n_layers: int, window: int):
        super().__init__()
        self.layers = nn.ModuleList(CodecLayer(cfg, window) for _ in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # [B, L, dim]
        bias = self.layers[0].attention.band_bias(x.shape[1], x.dtype, x.device) if len(self.layers) else None
        for layer in self.layers:
            x = layer(x, bias)
        return x.transpose(1, 2)


class SemanticCodebook(nn.Module):
    """VQ codebook kept as training statistics: entry = embedding_sum / cluster_usage."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.cluster_usage = nn.Parameter(torch.ones(size))  # [8192]
        self.embedding_sum = nn.Parameter(torch.zeros(size, dim))  # [8192, 256]

    def codebook(self) -> torch.Tensor:
        """[8192, 256]; usage clamped at 1e-5 as Mistral's code does (an unused entry would divide by 0)."""
        return self.embedding_sum / self.cluster_usage.clamp(min=1e-5)[:, None]


class Quantizer(nn.Module):
    def __init__(self, config: TtsConfig):
        super().__init__()
        self.semantic_codebook = SemanticCodebook(config.semantic_codebook_size, config.codec.semantic_dim)
        self.levels = config.acoustic_levels

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, 37] shifted -> latent [B, 256 + 36, T].

        Semantic code -> VQ entry, acoustic code c -> FSQ value 2c / 20 - 1, both after
        removing the +2 shift. Special codes (EMPTY 0, END 1) give a zero latent (the
        ExecuTorch example instead maps them to code 0, i.e. entry 0 and value -1)."""
        real = codes >= N_SPECIAL_CODES  # [B, T, 37]
        unshifted = torch.where(real, codes - N_SPECIAL_CODES, torch.zeros_like(codes))
        semantic = F.embedding(unshifted[..., 0], self.semantic_codebook.codebook())  # [B, T, 256]
        semantic = semantic * real[..., :1].to(semantic.dtype)
        acoustic = unshifted[..., 1:].to(semantic.dtype) * 2 / (self.levels - 1) - 1  # [B, T, 36]
        acoustic = torch.where(real[..., 1:], acoustic, torch.zeros_like(acoustic))
        return torch.cat([semantic, acoustic], dim=-1).transpose(1, 2)


class CodecDecoder(nn.Module):
    """Mistral's `audio_tokenizer` (decoder half): blocks alternate conv (even index) and
    transformer stage (odd): conv k3 292 -> dim, stage, ConvTranspose k4 s2, stage, ... , then
    the output conv k7 -> 240 samples per step of the last stage."""

    def __init__(self, config: TtsConfig):
        super().__init__()
        cfg = config.codec
        self.patch_size = cfg.patch_size
        self.quantizer = Quantizer(config)
        latent_dim = cfg.semantic_dim + cfg.acoustic_dim  # 256 + 36
        blocks: list[nn.Module] = [CausalConv(latent_dim, cfg.dim, cfg.kernels[0], "replicate")]
        for stage, (n_layers, window) in enumerate(zip(cfg.stage_lengths, cfg.stage_windows, strict=True)):
            blocks.append(CodecStage(cfg, n_layers, window))
            if stage + 1 < len(cfg.stage_lengths):
                blocks.append(CausalConvTranspose(cfg.dim, cfg.dim, cfg.kernels[stage + 1], cfg.strides[stage + 1]))
        self.decoder_blocks = nn.ModuleList(blocks)
        self.output_proj = CausalConv(cfg.dim, cfg.patch_size, cfg.patch_kernel, "reflect")

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, 37] -> audio [B, T * 1920] (whole utterance; sample t * 240 + h of the
        output is channel h of output-conv step t).

        Streaming: the decoder is causal with a receptive field of
        codec_receptive_field_frames (21), so decode_with_context (each chunk after enough
        left context, its samples dropped) equals this whole decode; the exported codec is
        this forward, and the runner streams it that way.
        """
        x = self.quantizer.dequantize(codes).to(self.output_proj.conv.weight.dtype)  # [B, 292, T]
        for block in self.decoder_blocks:
            x = block(x)  # [B, dim, T * upsampling so far]
        steps = self.output_proj(x)  # [B, 240, 8T]
        return steps.transpose(1, 2).reshape(codes.shape[0], -1)


def codec_receptive_field_frames(config: TtsConfig | CodecConfig) -> int:
    """How many earlier frames can change a frame's samples: decoding a chunk with at least this
    many frames of left context (or from the utterance start) gives the whole decode's samples.

    Walks back from the first output step of frame f (the frame's earliest sample) through each
    block's lookback, at that block's resolution. Released config (and the tiny one: only its
    widths differ), 8 last-stage steps per frame:
        output conv k7             6 steps back        -> 8f - 6
        stage 3, 2 layers x w 16   32 steps            -> 8f - 38
        ConvTranspose k4 s2: fine step o reads coarse ceil((o - 3) / 2) .. floor(o / 2)
                                                       -> 4f - 20
        stage 2, 2 x 8             16                  -> 4f - 36
        ConvTranspose                                  -> 2f - 19
        stage 1, 2 x 4             8                   -> 2f - 27
        ConvTranspose                                  -> f - 15
        stage 0, 2 x 2             4 frames            -> f - 19
        input conv k3              2 frames            -> f - 21
    = 21 frames, within the 25 frames of context that ExecuTorch and vllm-omni use.
    (A CodecAttention query at step i reads keys i - window .. i, so a layer looks back `window`.)

    Tight: with 20 frames of context, the replicate padding of the chunk's first frame reaches
    the first 4 steps (960 samples) of the first kept frame and nothing later. On the tiny
    checkpoint that change is ~5e-12 of the waveform peak (float64): below float32 round-off.

    The paddings at a call's left edge (replicate for the input conv, masked keys in attention)
    stand in for missing history; they only reach steps whose lookback crosses the edge, which
    is what this bounds. The output conv's reflect padding is different: it mirrors steps
    1..6 of the call, i.e. reads *later* samples, but only within the call's first frame (8 steps
    per frame > 6): with context that frame is dropped, and at the utterance start the call's
    edge is the whole decode's edge, so the padding is the same there.
    """
    cfg = config.codec if isinstance(config, TtsConfig) else config
    # Earliest step reached, relative to frame f's first step at the current resolution (which
    # is divisible by every stride below it, so ceil divisions can drop f).
    step = -(cfg.patch_kernel - 1)
    for stage in reversed(range(len(cfg.stage_lengths))):
        step -= cfg.stage_lengths[stage] * cfg.stage_windows[stage]
        kernel, stride = cfg.kernels[stage], cfg.strides[stage]
        if stage > 0:  # CausalConvTranspose: output o reads inputs i with 0 <= o - i * stride < kernel
            step = -((kernel - 1 - step) // stride)  # ceil((step - (kernel - 1)) / stride)
        else:  # the input CausalConv (stride 1): kernel - 1 frames back
            step -= kernel - 1
    return -step


def decode_with_context(
    decode: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, start: int, end: int, context: int
) -> torch.Tensor:
    """The streaming runner's codec call, in PyTorch: frames [start, end) of codes [B, T, 37]
    decoded after min(context, start) frames of left context, whose samples are dropped.

    `decode` maps codes [B, F, 37] -> audio [B, F * samples_per_frame] (`VoxtralTts.decode`, a
    `CodecDecoder`, the exported `codec` method). Returns audio [B, (end - start) * samples_per_frame];
    equal to the whole decode's samples of those frames when context >= codec_receptive_field_frames."""
    if not 0 <= start < end <= codes.shape[1] or context < 0:
        raise ValueError(f"frames [{start}, {end}) with context {context} do not fit {codes.shape[1]} frames")
    first = max(0, start - context)
    audio = decode(codes[:, first:end])  # [B, (end - first) * samples_per_frame]
    samples_per_frame = audio.shape[-1] // (end - first)
    return audio[:, (start - first) * samples_per_frame :]


def fold_weight_norm(module: nn.Module) -> None:
    """Replaces every weight-normed conv's (g, v) by its plain weight g * v / |v| (torch's
    weight norm, dim 0: per output channel for Conv1d, per input channel for
    ConvTranspose1d), computed in float32 whatever the parameters' dtype, and kept float32."""
    from torch.nn.utils import parametrize

    for conv in module.modules():
        if parametrize.is_parametrized(conv, "weight"):
            original = conv.parametrizations.weight
            for p in (original.original0, original.original1):
                p.data = p.data.float()
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
            # Without grads torch leaves the folded weight as a buffer; make it a parameter again,
            # like every other weight (quantizers and dtype casts look at parameters).
            weight = conv.weight.detach()
            del conv.weight
            conv.weight = nn.Parameter(weight, requires_grad=False)


# --- the whole model ---------------------------------------------------------------------


class VoxtralTts(nn.Module):
    """`max_positions` bounds the LM's positions (its ring cache holds them all when the
    model has no shorter sliding window); `max_tokens` bounds one LM call (the prefill)."""

    def __init__(self, config: TtsConfig, max_positions: int = 4096, max_tokens: int = 512):
        super().__init__()
        self.config = config
        window = min(config.lm.sliding_window, max_positions)
        self.mm_audio_embeddings = AudioEmbeddings(config)
        self.layers = nn.ModuleList(LmLayer(config, window, max_tokens) for _ in range(config.lm.n_layers))
        self.norm = RMSNorm(config.lm.dim, config.lm.norm_eps)
        self.acoustic_transformer = AcousticTransformer(config)
        self.audio_tokenizer = CodecDecoder(config)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids [B, T] -> [B, T, dim]."""
        return self.mm_audio_embeddings.tok_embeddings(token_ids)

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [..., 37] shifted -> the next LM input [..., dim]."""
        return self.mm_audio_embeddings.audio_codebook_embeddings(codes)

    def hidden_states(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """LM over embeds [1, T, dim] at positions start_pos [1] int64 onwards (continuing the
        KV cache) -> final-norm hidden states [1, T, dim] (the LM head is unused)."""
        cfg = self.config.lm
        cos, sin = rope_cos_sin(start_pos + torch.arange(embeds.shape[1], device=embeds.device), cfg.head_dim, cfg.rope_theta)
        x = embeds
        for layer in self.layers:
            x = layer(x, start_pos, cos, sin)
        return self.norm(x)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Whole-utterance codec decode: codes [B, T, 37] -> audio [B, T * 1920]."""
        return self.audio_tokenizer(codes)
