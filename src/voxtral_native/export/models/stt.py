"""Voxtral-Mini-4B-Realtime-2602 as plain nn.Modules, streaming-native.

    mel [1, 128, 8n] --CausalWhisperEncoder--> [1, 4n, 1280] --4x concat--> [1, n, 5120]
        --audio_language_projection--> audio embeddings [1, n, 3072]   (one per 80 ms)
    audio embedding(i) + token embedding(previous token) --Decoder (ada-norm t_cond)--> logits

Every call continues a stream: the conv stem keeps its left context and attention keeps
ring KV caches in buffers, so offline processing is one long call (or many short ones:
the results are the same). Module names follow Mistral's checkpoint keys.
"""

from __future__ import annotations

import torch
from torch import nn

from voxtral_native.export.config import SttConfig, TransformerConfig
from voxtral_native.export.models.layers import (
    FeedForward,
    RingAttention,
    RMSNorm,
    rope_cos_sin,
    sinusoidal_embedding,
)


class CausalConv(nn.Module):
    """Conv1d with causal left context (kernel - stride frames) carried between calls.

    At a stream start (start_frame == 0) the context is zeros, as the reference's left
    padding; later calls use the previous call's last input frames, so chunked and
    whole-clip runs give identical outputs.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride)
        self.context = kernel - stride
        self.register_buffer("tail", torch.zeros(1, c_in, self.context), persistent=False)  # [1, C_in, k - s]

    def forward(self, x: torch.Tensor, stream_started: torch.Tensor) -> torch.Tensor:
        # where(), not a multiply: ExecuTorch does not initialize mutable buffers, and
        # garbage * 0 is NaN when the garbage is NaN.
        context = torch.where(stream_started, self.tail, torch.zeros_like(self.tail))
        padded = torch.cat([context, x], dim=-1)  # [1, C_in, ctx + F]
        self.tail.copy_(padded[:, :, padded.shape[-1] - self.context :])
        return self.conv(padded)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig, max_frames: int):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = RingAttention(cfg, max_frames, biases=True)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg.dim, cfg.hidden_dim, w2_bias=True)

    def forward(self, x, start_pos, cos, sin):
        x = x + self.attention(self.attention_norm(x), start_pos, cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class EncoderTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig, max_frames: int):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg, max_frames) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)


class CausalWhisperEncoder(nn.Module):
    """Conv stem (k3 s1, k3 s2, GELU each) + pre-norm transformer with sliding-window
    causal attention; 100 Hz mel in, 50 Hz frames out."""

    def __init__(self, config: SttConfig, max_frames: int):
        super().__init__()
        cfg = config.encoder
        self.rope_theta, self.head_dim = cfg.rope_theta, cfg.head_dim
        self.conv_layers = nn.ModuleList(
            [CausalConv(config.num_mel_bins, cfg.dim, 3, 1), CausalConv(cfg.dim, cfg.dim, 3, 2)]
        )
        self.transformer = EncoderTransformer(cfg, max_frames)

    def forward(self, mel: torch.Tensor, start_frame: torch.Tensor) -> torch.Tensor:
        """mel [1, n_mels, F] (F even), start_frame [1] int64 (encoder frames so far)
        -> [1, F/2, dim]."""
        started = start_frame > 0  # [1] bool
        x = nn.functional.gelu(self.conv_layers[0](mel, started))
        x = nn.functional.gelu(self.conv_layers[1](x, started)).transpose(1, 2)  # [1, F/2, dim]
        cos, sin = rope_cos_sin(start_frame + torch.arange(x.shape[1], device=x.device), self.head_dim, self.rope_theta)
        for layer in self.transformer.layers:
            x = layer(x, start_frame, cos, sin)
        return self.transformer.norm(x)


class AudioEmbedding(nn.Module):
    """Mistral's `mm_streams_embeddings.embedding_module`: encoder, adapter, token table."""

    def __init__(self, config: SttConfig, max_frames: int):
        super().__init__()
        self.downsample = config.downsample_factor
        self.whisper_encoder = CausalWhisperEncoder(config, max_frames)
        enc_dim, dim = config.encoder.dim, config.decoder.dim
        self.audio_language_projection = nn.Sequential(
            nn.Linear(enc_dim * self.downsample, dim, bias=False), nn.GELU(), nn.Linear(dim, dim, bias=False)
        )
        self.tok_embeddings = nn.Embedding(config.vocab_size, dim)


class _Streams(nn.Module):
    def __init__(self, config: SttConfig, max_frames: int):
        super().__init__()
        self.embedding_module = AudioEmbedding(config, max_frames)


class DecoderLayer(nn.Module):
    def __init__(self, config: SttConfig, max_tokens: int):
        super().__init__()
        cfg = config.decoder
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = RingAttention(cfg, max_tokens, biases=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        # Time conditioning of the FFN input: scale = 1 + W2(GELU(W1(t_cond))).
        self.ada_rms_norm_t_cond = nn.Sequential(
            nn.Linear(cfg.dim, config.t_cond_dim, bias=False), nn.GELU(), nn.Linear(config.t_cond_dim, cfg.dim, bias=False)
        )
        self.feed_forward = FeedForward(cfg.dim, cfg.hidden_dim, w2_bias=False)

    def forward(self, x, start_pos, cos, sin, t_cond):
        x = x + self.attention(self.attention_norm(x), start_pos, cos, sin)
        scale = 1 + self.ada_rms_norm_t_cond(t_cond)  # [1, dim]
        return x + self.feed_forward(self.ffn_norm(x) * scale)


class VoxtralRealtime(nn.Module):
    """The whole model. `max_encoder_tokens` / `max_decoder_tokens` bound one call (audio
    tokens of 80 ms per encode call, positions per decode call) and size the ring caches."""

    def __init__(self, config: SttConfig, max_encoder_tokens: int = 64, max_decoder_tokens: int = 64):
        super().__init__()
        self.config = config
        self.frames_per_token = config.downsample_factor  # encoder frames per audio token
        self.mm_streams_embeddings = _Streams(config, max_encoder_tokens * self.frames_per_token)
        self.layers = nn.ModuleList(DecoderLayer(config, max_decoder_tokens) for _ in range(config.decoder.n_layers))
        self.norm = RMSNorm(config.decoder.dim, config.decoder.norm_eps)
        # Tied output head: a Linear sharing the token table, so quantization can treat
        # the head (a matmul) and the table (a lookup) each in its own way.
        self.output = nn.Linear(config.decoder.dim, config.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        self.output.weight = self._embedding.tok_embeddings.weight

    @property
    def _embedding(self) -> AudioEmbedding:
        return self.mm_streams_embeddings.embedding_module

    def encode(self, mel: torch.Tensor, start_token: torch.Tensor) -> torch.Tensor:
        """mel [1, n_mels, 2 * frames_per_token * n] continuing the stream at audio token
        `start_token` [1] int64 -> audio embeddings [1, n, dim]."""
        emb = self._embedding
        frames = emb.whisper_encoder(mel, start_token * self.frames_per_token)  # [1, 4n, enc_dim]
        grouped = frames.reshape(1, -1, frames.shape[-1] * self.frames_per_token)  # [1, n, 4 * enc_dim]
        return emb.audio_language_projection(grouped)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids [1, T] int64 -> [1, T, dim]."""
        return self._embedding.tok_embeddings(token_ids)

    def decode(
        self,
        audio_embeds: torch.Tensor,
        token_ids: torch.Tensor,
        start_pos: torch.Tensor,
        delay_tokens: torch.Tensor,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Decoder positions start_pos.. with inputs audio_embeds [1, T, dim] + embed(token_ids
        [1, T]) and t_cond from the delay in tokens (delay_tokens [1] float) -> logits
        [1, T, vocab] ([1, 1, vocab] with last_only: a prefill needs only its last position)."""
        cfg = self.config.decoder
        x = audio_embeds + self.embed_tokens(token_ids)
        t_cond = sinusoidal_embedding(delay_tokens, cfg.dim).to(x.dtype)
        cos, sin = rope_cos_sin(start_pos + torch.arange(x.shape[1], device=x.device), cfg.head_dim, cfg.rope_theta)
        for layer in self.layers:
            x = layer(x, start_pos, cos, sin, t_cond)
        if last_only:
            x = x[:, -1:]
        return self.output(self.norm(x))
