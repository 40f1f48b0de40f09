"""Voxtral-4B-TTS-2603's params.json: the LM backbone, the flow-matching acoustic
transformer and the codec decoder, with errors that name the file and the field.

The released file is less tidy than the speech-to-text one, and these quirks are accepted:
- `acoustic_transformer_args` may omit `n_decoding_steps` (7) and `norm_eps` (1e-5); the
  defaults taken are listed in `TtsConfig.defaults_used` so the manifest can record them;
- the LM has no `sliding_window`: it attends over everything it has seen (`lm.sliding_window`
  is then `max_seq_len`; the model bounds it by the positions it is built for);
- attention widths `n_heads * head_dim` need not equal `dim` (LM, acoustic, codec);
- codec stage depths come per stage from `decoder_transformer_lengths_str`;
- the codebooks come as a `codebook_sizes` string ("8192,21,...,21") or as
  `semantic_codebook_size` / `acoustic_codebook_size` / `n_acoustic_codebook`.
Variants no released checkpoint uses (biases, no QK norm, no weight norm, ...) are refused
with a clear error instead of being half supported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from voxtral_native.export.config import ParamsError, TransformerConfig, _Fields

# Codes 0 (EMPTY_AUDIO) and 1 (END_AUDIO) come before the real codes of every codebook.
N_SPECIAL_CODES = 2
# Defaults of `acoustic_transformer_args` fields that the released params.json omits.
ACOUSTIC_DEFAULTS = {"n_decoding_steps": 7, "norm_eps": 1e-5}
# The LM's attention span when params.json gives no sliding window and no max_seq_len.
LM_DEFAULT_MAX_SEQ_LEN = 65536


def _where(f: _Fields, key: str) -> str:
    return f"{f.path}.{key}" if f.path else key


def _bool(f: _Fields, key: str, default: bool | None = None) -> bool:
    if key not in f.data:
        if default is None:
            raise ParamsError(f"{f.file}: missing field '{_where(f, key)}'")
        return default
    value = f.data[key]
    if not isinstance(value, bool):
        raise ParamsError(f"{f.file}: field '{_where(f, key)}' must be true or false, got {value!r}")
    return value


def _int_list(f: _Fields, key: str) -> tuple[int, ...]:
    text = f._get(key, (str,), "a comma-separated string of integers")
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        where = _where(f, key)
        raise ParamsError(f"{f.file}: field '{where}' must be comma-separated integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ParamsError(f"{f.file}: field '{_where(f, key)}' must hold positive integers, got {text!r}")
    return values


def _refuse_unless(f: _Fields, key: str, supported: bool, default: bool) -> None:
    """Fields whose other value no released checkpoint uses (and this model does not build)."""
    if _bool(f, key, default) != supported:
        where = _where(f, key)
        raise ParamsError(f"{f.file}: field '{where}' = {not supported} is not supported (expected {supported})")


def _transformer(f: _Fields, *, rope_theta: float, norm_eps: float, sliding_window: int) -> TransformerConfig:
    """A transformer block whose rope_theta / norm_eps may come from elsewhere than `f`."""
    cfg = TransformerConfig(
        dim=f.int("dim"), n_layers=f.int("n_layers"), n_heads=f.int("n_heads"), n_kv_heads=f.int("n_kv_heads"),
        head_dim=f.int("head_dim"), hidden_dim=f.int("hidden_dim"), rope_theta=rope_theta, norm_eps=norm_eps,
        sliding_window=sliding_window,
    )  # fmt: skip
    _check_heads(f, cfg.n_heads, cfg.n_kv_heads)
    return cfg


def _check_heads(f: _Fields, n_heads: int, n_kv_heads: int) -> None:
    if n_heads % n_kv_heads:
        raise ParamsError(f"{f.file}: {f.path}: n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}")


@dataclass(frozen=True)
class CodecConfig:
    """The codec decoder (`multimodal.audio_tokenizer_args`): codes -> 24 kHz waveform."""

    dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    norm_eps: float
    qk_norm_eps: float
    sliding_window: int  # attn_sliding_window_size: the window at the finest (last) stage
    half_window_upon_downsampling: bool
    patch_size: int  # samples per step of the last stage (240)
    patch_kernel: int  # output conv kernel (7)
    semantic_dim: int  # VQ codebook width (256)
    acoustic_dim: int  # FSQ values per frame (36)
    stage_lengths: tuple[int, ...]  # transformer layers per stage, e.g. (2, 2, 2, 2)
    kernels: tuple[int, ...]  # conv kernel before each stage: (3, 4, 4, 4)
    strides: tuple[int, ...]  # its stride (upsampling factor): (1, 2, 2, 2)

    @property
    def stage_windows(self) -> tuple[int, ...]:
        """Attention window (in steps of that stage) per stage. The encoder halves its window at
        each downsampling (half_window_upon_downsampling); the decoder mirrors it, doubling at
        each upsampling conv, so every stage sees the same span of time: 16 at the last stage
        -> 2, 4, 8, 16 (2 frames = 160 ms everywhere)."""
        if not self.half_window_upon_downsampling:
            return (self.sliding_window,) * len(self.stage_lengths)
        upsamplings_after = [sum(s > 1 for s in self.strides[i + 1 :]) for i in range(len(self.strides))]
        return tuple(max(1, self.sliding_window >> n) for n in upsamplings_after)

    @property
    def samples_per_frame(self) -> int:
        return self.patch_size * math.prod(self.strides)

    @classmethod
    def parse(cls, f: _Fields) -> CodecConfig:
        for key, supported, default in (
            ("causal", True, True), ("conv_weight_norm", True, True), ("qk_norm", True, True),
            ("layer_scale", True, True), ("use_biases", False, False),
        ):  # fmt: skip
            _refuse_unless(f, key, supported, default)
        cfg = cls(
            dim=f.int("dim"), hidden_dim=f.int("hidden_dim"), n_heads=f.int("n_heads"), n_kv_heads=f.int("n_kv_heads"),
            head_dim=f.int("head_dim"), norm_eps=f.float("norm_eps"), qk_norm_eps=f.float("qk_norm_eps"),
            sliding_window=f.int("attn_sliding_window_size"),
            half_window_upon_downsampling=_bool(f, "half_attn_window_upon_downsampling"),
            patch_size=f.int("pretransform_patch_size"), patch_kernel=f.int("patch_proj_kernel_size"),
            semantic_dim=f.int("semantic_dim"), acoustic_dim=f.int("acoustic_dim"),
            stage_lengths=_int_list(f, "decoder_transformer_lengths_str"),
            kernels=_int_list(f, "decoder_convs_kernels_str"), strides=_int_list(f, "decoder_convs_strides_str"),
        )  # fmt: skip
        n = len(cfg.stage_lengths)
        if len(cfg.kernels) != n or len(cfg.strides) != n:
            raise ParamsError(
                f"{f.file}: {f.path}: decoder_transformer_lengths_str, decoder_convs_kernels_str and "
                f"decoder_convs_strides_str must have one entry per stage, "
                f"got {n}, {len(cfg.kernels)}, {len(cfg.strides)}"
            )
        if cfg.strides[0] != 1:
            raise ParamsError(f"{f.file}: {f.path}: the first decoder conv must have stride 1, got {cfg.strides[0]}")
        if any(k < s for k, s in zip(cfg.kernels, cfg.strides, strict=True)):
            raise ParamsError(f"{f.file}: {f.path}: a decoder conv kernel is smaller than its stride")
        _check_heads(f, cfg.n_heads, cfg.n_kv_heads)
        return cfg


@dataclass(frozen=True)
class TtsConfig:
    """Voxtral-4B-TTS-2603: Mistral LM -> flow-matching acoustic transformer -> codec."""

    lm: TransformerConfig  # sliding_window = its attention span (max_seq_len when the file has none)
    acoustic: TransformerConfig  # bidirectional over 3 tokens, no rotary (rope_theta unused)
    codec: CodecConfig
    vocab_size: int
    semantic_codebook_size: int  # 8192 real codes (+ 2 special)
    acoustic_levels: int  # 21 FSQ levels per acoustic value (+ 2 special)
    n_acoustic_codebooks: int  # 36
    n_decoding_steps: int  # Euler steps of the flow matching (7)
    sampling_rate: int
    defaults_used: tuple[str, ...] = ()  # dotted fields absent from params.json and defaulted

    @property
    def n_codebooks(self) -> int:
        return 1 + self.n_acoustic_codebooks

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """Rows per codebook in the audio-code embedding, special codes included: [8194, 23 x 36]."""
        return (self.semantic_codebook_size + N_SPECIAL_CODES,) + (
            self.acoustic_levels + N_SPECIAL_CODES,
        ) * self.n_acoustic_codebooks

    @classmethod
    def from_params(cls, params: dict, file: Path = Path("params.json")) -> TtsConfig:
        top = _Fields(params, "", file)
        multimodal = top.obj("multimodal")
        audio = multimodal.obj("audio_model_args")
        acoustic_args = audio.obj("acoustic_transformer_args")
        codec_args = multimodal.obj("audio_tokenizer_args")
        defaults_used: list[str] = []

        if "sliding_window" in top.data:
            lm_window = top.int("sliding_window")
        elif "max_seq_len" in top.data:
            lm_window = top.int("max_seq_len")
        else:
            lm_window = LM_DEFAULT_MAX_SEQ_LEN
            defaults_used.append("max_seq_len")
        lm = TransformerConfig.parse(top, lm_window)

        def acoustic_field(key: str, read):
            if key in acoustic_args.data:
                return read(key)
            defaults_used.append(_where(acoustic_args, key))
            return ACOUSTIC_DEFAULTS[key]

        _refuse_unless(acoustic_args, "use_biases", False, False)
        acoustic = _transformer(
            acoustic_args, rope_theta=0.0, norm_eps=acoustic_field("norm_eps", acoustic_args.float), sliding_window=3
        )
        n_decoding_steps = acoustic_field("n_decoding_steps", acoustic_args.int)
        if acoustic.dim != lm.dim:
            raise ParamsError(f"{file}: {acoustic_args.path}.dim {acoustic.dim} must equal the LM dim {lm.dim}")
        if "input_dim" in acoustic_args.data and acoustic_args.int("input_dim") != lm.dim:
            raise ParamsError(f"{file}: {acoustic_args.path}.input_dim must equal the LM dim {lm.dim}")

        semantic_size, levels, n_acoustic = cls._codebooks(audio)
        codec = CodecConfig.parse(codec_args)
        if codec.acoustic_dim != n_acoustic:
            raise ParamsError(
                f"{file}: {codec_args.path}.acoustic_dim {codec.acoustic_dim} != {n_acoustic} acoustic codebooks"
            )
        for key, value in (("semantic_codebook_size", semantic_size), ("acoustic_codebook_size", levels)):
            if key in codec_args.data and codec_args.int(key) != value:
                raise ParamsError(f"{file}: {codec_args.path}.{key} {codec_args.int(key)} != {audio.path}'s {value}")

        sampling_rate = codec_args.int("sampling_rate")
        return cls(
            lm=lm, acoustic=acoustic, codec=codec, vocab_size=top.int("vocab_size"),
            semantic_codebook_size=semantic_size, acoustic_levels=levels, n_acoustic_codebooks=n_acoustic,
            n_decoding_steps=n_decoding_steps, sampling_rate=sampling_rate, defaults_used=tuple(defaults_used),
        )  # fmt: skip

    @staticmethod
    def _codebooks(audio: _Fields) -> tuple[int, int, int]:
        """(semantic size, acoustic levels, number of acoustic codebooks), sizes without specials."""
        if "codebook_sizes" in audio.data:
            sizes = _int_list(audio, "codebook_sizes")
            if len(sizes) < 2 or len(set(sizes[1:])) != 1:
                raise ParamsError(
                    f"{audio.file}: field '{audio.path}.codebook_sizes' must be the semantic size followed by "
                    f"equal acoustic sizes, got {audio.data['codebook_sizes']!r}"
                )
            return sizes[0], sizes[1], len(sizes) - 1
        sizes = ("semantic_codebook_size", "acoustic_codebook_size", "n_acoustic_codebook")
        return tuple(audio.int(key) for key in sizes)

    @classmethod
    def from_file(cls, path: str | Path) -> TtsConfig:
        path = Path(path)
        try:
            params = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no params.json (not a Mistral checkpoint directory?)") from None
        except json.JSONDecodeError as e:
            raise ParamsError(f"{path}: not valid JSON ({e})") from None
        return cls.from_params(params, path)
