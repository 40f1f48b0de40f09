"""Model configurations read from a Mistral checkpoint's params.json, with errors that name
the file and the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ParamsError(ValueError):
    """params.json lacks a field or has one of the wrong type."""


class _Fields:
    """Typed access to one JSON object of params.json; errors name the dotted path."""

    def __init__(self, data: Any, path: str, file: Path):
        if not isinstance(data, dict):
            raise ParamsError(f"{file}: '{path or 'top level'}' must be an object, got {type(data).__name__}")
        self.data, self.path, self.file = data, path, file

    def _get(self, key: str, types: tuple[type, ...], type_name: str):
        where = f"{self.path}.{key}" if self.path else key
        if key not in self.data:
            raise ParamsError(f"{self.file}: missing field '{where}'")
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ParamsError(f"{self.file}: field '{where}' must be {type_name}, got {value!r}")
        return value

    def int(self, key: str) -> int:
        value = self._get(key, (int,), "an integer")
        if value <= 0:
            where = f"{self.path}.{key}" if self.path else key
            raise ParamsError(f"{self.file}: field '{where}' must be positive, got {value}")
        return value

    def float(self, key: str) -> float:
        return float(self._get(key, (int, float), "a number"))

    def obj(self, key: str) -> _Fields:
        where = f"{self.path}.{key}" if self.path else key
        return _Fields(self._get(key, (dict,), "an object"), where, self.file)


@dataclass(frozen=True)
class TransformerConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    rope_theta: float
    norm_eps: float
    sliding_window: int

    @classmethod
    def parse(cls, f: _Fields, sliding_window: int) -> TransformerConfig:
        cfg = cls(
            dim=f.int("dim"), n_layers=f.int("n_layers"), n_heads=f.int("n_heads"), n_kv_heads=f.int("n_kv_heads"),
            head_dim=f.int("head_dim"), hidden_dim=f.int("hidden_dim"), rope_theta=f.float("rope_theta"),
            norm_eps=f.float("norm_eps"), sliding_window=sliding_window,
        )  # fmt: skip
        if cfg.n_heads % cfg.n_kv_heads:
            raise ParamsError(f"{f.file}: n_heads {cfg.n_heads} is not a multiple of n_kv_heads {cfg.n_kv_heads}")
        if cfg.head_dim % 2:
            raise ParamsError(f"{f.file}: head_dim {cfg.head_dim} must be even (rotary pairs)")
        return cfg


@dataclass(frozen=True)
class SttConfig:
    """Voxtral-Mini-4B-Realtime-2602: causal Whisper encoder, adapter, Mistral decoder."""

    encoder: TransformerConfig
    decoder: TransformerConfig
    vocab_size: int
    num_mel_bins: int
    sampling_rate: int
    hop_length: int
    window_size: int
    global_log_mel_max: float
    downsample_factor: int
    t_cond_dim: int

    @classmethod
    def from_params(cls, params: dict, file: Path = Path("params.json")) -> SttConfig:
        top = _Fields(params, "", file)
        whisper = top.obj("multimodal").obj("whisper_model_args")
        enc = whisper.obj("encoder_args")
        audio = enc.obj("audio_encoding_args")
        return cls(
            encoder=TransformerConfig.parse(enc, enc.int("sliding_window")),
            decoder=TransformerConfig.parse(top, top.int("sliding_window")),
            vocab_size=top.int("vocab_size"),
            num_mel_bins=audio.int("num_mel_bins"),
            sampling_rate=audio.int("sampling_rate"),
            hop_length=audio.int("hop_length"),
            window_size=audio.int("window_size"),
            global_log_mel_max=audio.float("global_log_mel_max"),
            downsample_factor=whisper.obj("downsample_args").int("downsample_factor"),
            t_cond_dim=top.int("ada_rms_norm_t_cond_dim"),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> SttConfig:
        path = Path(path)
        try:
            params = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no params.json (not a Mistral checkpoint directory?)") from None
        except json.JSONDecodeError as e:
            raise ParamsError(f"{path}: not valid JSON ({e})") from None
        return cls.from_params(params, path)
