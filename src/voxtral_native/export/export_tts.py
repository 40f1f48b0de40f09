"""Export Voxtral-4B-TTS-2603 from a Mistral checkpoint directory to an artifact directory:

    model.pte      methods below + metadata constant methods
    tekken.json    the checkpoint's tokenizer, copied
    voices.f32     every preset voice as float32 rows (export/voices.py), indexed in the manifest
    manifest.json  the artifact index (artifact.py): kind "tts", backend, files, options,
                   quantization, voices, the params.json defaults taken

Methods (B = 1; T prompt tokens; N voice rows; F = max_codec_frames; 37 codes per frame, shifted
by +2: 0 EMPTY_AUDIO, 1 END_AUDIO; every f32 except the codec's audio is bf16 in a
bf16-edge export, whose metadata says lm_input_is_bf16 = 1):
    prefill(token_ids [1, T] i64, voice [1, N, dim] f32)
        -> (hidden [1, dim] f32, semantic_code [1] i64)
        the prompt `[BOS] [BEGIN_AUDIO] [AUDIO]*N [NEXT_AUDIO_TEXT] text [REPEAT_AUDIO_TEXT]
        [BEGIN_AUDIO] [AUDIO]` at positions 0..T-1 with the voice rows written over
        positions [2, 2+N); the hidden state and greedy semantic code of the last position
        (the trailing [AUDIO] drives frame 0). 3 + N <= T <= max_prompt_tokens.
    text_prefill(token_ids [1, T] i64, position [1] i64) -> (hidden [1, dim] f32, semantic_code [1] i64)
        the rest of a prompt whose first `position` tokens the LM cache already holds: a
        runner prefills `[BOS] [BEGIN_AUDIO] voice` once per voice and each later utterance
        of that voice from [NEXT_AUDIO_TEXT] on (the prefix's keys depend on the voice
        alone). 4 <= T <= max_prompt_tokens. The cache has lm_cache_slots slots: a position
        p is slot p % lm_cache_slots, so the prefix holds until a position past them is written.
    decode(codes [1, 37] i64, position [1] i64) -> (hidden [1, dim] f32, semantic_code [1] i64)
        one LM step fed the sum of the previous frame's 37 code embeddings.
    semantic_logits(hidden [1, dim] f32) -> logits [1, 8320] f32
        masked (EMPTY_AUDIO and the padding past 8194 at -inf), for temperature sampling only.
    acoustic_step(hidden [1, dim] f32, x [1, 36] f32, step [1] i64)
        -> (x_next [1, 36] f32, acoustic_codes [1, 36] i64)
        one Euler step of the flow matching (conditioned and unconditioned velocity as a
        batch of 2, CFG) from timesteps[step] to timesteps[step + 1] of
        linspace(0, 1, n_decoding_steps + 1), and x_next quantized (ties to even). A runner
        calls it n_decoding_steps times per frame, x starting at noise * noise_scale (the
        noise from its generator), and keeps the last step's codes. (One step per call, not
        all seven unrolled: the unrolled method's lowering held a copy of the weights per step
        and could not export at full size within 24 GB.)
    codec(codes [1, F, 37] i64) -> audio [1, F * 1920] f32
        exactly F frames: the codec is causal, so a runner pads a shorter call on the right
        (with EMPTY_AUDIO) and keeps the first n * 1920 samples, which equal an n-frame
        decode. (Static, because ExecuTorch 1.5.1's XNNPACK lowering cut a dynamic frame
        count's bound from 50 to 40 at the last transposed conv.) Stateless: a streaming
        runner decodes each chunk after codec_context_frames frames of left context and
        drops their samples, which equals the whole-utterance decode (test_tts_export.py).
    first_chunk_codec(codes [1, first_chunk_frames, 37] i64) -> audio [1, first_chunk_frames * 1920] f32
        the same codec over the first chunk of an utterance (no left context): its first audio
        without the 50-frame call's cost (~10x less on the CPU).
The LM keeps its ring KV cache inside the program, one cache for prefill and decode (a
shared mutable buffer: the runtime loads the program with shared memory arenas).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from voxtral_native.artifact import write_manifest
from voxtral_native.export.aoti import MethodSpec
from voxtral_native.export.export_stt import (
    AOTI_DEVICES,
    BACKENDS,
    DTYPES,
    check_aoti_options,
    releasing_after,
    write_program,
)
from voxtral_native.export.metadata import CHUNK_FRAMES, CODEC_CONTEXT_FRAMES, FIRST_CHUNK_FRAMES, tts_metadata
from voxtral_native.export.models.tts import VoxtralTts, quantize_acoustic
from voxtral_native.export.quantize import EMBEDDING_SCHEMES, QuantScheme, quantize_module_
from voxtral_native.export.tts_checkpoint import load_tts
from voxtral_native.export.voices import VOICES_FILE, read_voices, write_voices


@dataclass
class TtsExportOptions:
    backend: str = "xnnpack"
    quant: str | None = None  # LM linears: 4w, 8w, 8da4w, 8da8w[:group]
    acoustic_quant: str | None = None  # acoustic transformer linears (and the semantic head)
    codec_quant: str | None = None  # codec transformer linears (convs stay float32)
    embedding_quant: str | None = None  # token table: 4w, 8w[:group]
    dtype: str = "fp32"  # compute dtype of the LM and acoustic transformer (the codec stays fp32)
    max_positions: int = 4096  # LM positions per utterance (prompt + frames; 80 ms per frame)
    max_prompt_tokens: int = 512  # tokens of one prefill (voice rows included)
    max_codec_frames: int = 50  # frames per codec call (context + chunk), padded on the right
    # bf16 program edges: hidden, voice and noise inputs, hidden and logits outputs in bf16
    # (lm_input_is_bf16 = 1; the runner stages them). Token ids and codes stay int64, audio float32.
    bf16_edges: bool = False
    schemes: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend '{self.backend}' (expected one of {', '.join(BACKENDS)})")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype '{self.dtype}' (expected one of {', '.join(DTYPES)})")
        for name in ("max_positions", "max_prompt_tokens", "max_codec_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_codec_frames < CODEC_CONTEXT_FRAMES + CHUNK_FRAMES:
            raise ValueError(f"max_codec_frames must hold a chunk and its context: at least "
                             f"{CODEC_CONTEXT_FRAMES + CHUNK_FRAMES}")
        if self.max_prompt_tokens > self.max_positions:
            raise ValueError("max_prompt_tokens cannot exceed max_positions")
        for flag, text in (("--quant", self.quant), ("--acoustic-quant", self.acoustic_quant),
                           ("--codec-quant", self.codec_quant)):  # fmt: skip
            if text and self.dtype == "bf16" and QuantScheme.parse(text).name.startswith("8da"):
                raise ValueError(f"{flag} {text} needs float32 or float16 activations (XNNPACK's dynamically "
                                 "quantized linears have no bf16 form)")
        self.schemes = {
            "lm": QuantScheme.parse(self.quant) if self.quant else None,
            "acoustic": QuantScheme.parse(self.acoustic_quant) if self.acoustic_quant else None,
            "codec": QuantScheme.parse(self.codec_quant) if self.codec_quant else None,
            "embedding": QuantScheme.parse(self.embedding_quant, EMBEDDING_SCHEMES) if self.embedding_quant else None,
        }
        check_aoti_options(self.backend, self.schemes)


_CODEC_LAYER = re.compile(r"audio_tokenizer\.decoder_blocks\.\d+\.layers\.\d+")
_ACOUSTIC_LAYER = re.compile(r"acoustic_transformer\.layers\.\d+")
_LM_LAYER = re.compile(r"layers\.\d+")


def tts_quantizer(schemes: dict, tinygemm_device: str | None = None) -> Callable[[str, nn.Module], None]:
    """A load-time hook for load_tts: quantizes each block as soon as it is read
    (`tinygemm_device`: AOTI exports, as in quantize_module_)."""
    dev = tinygemm_device

    def hook(name: str, block: nn.Module) -> None:
        if _LM_LAYER.fullmatch(name):
            quantize_module_(block, schemes["lm"], nn.Linear, tinygemm_device=dev)
        elif _ACOUSTIC_LAYER.fullmatch(name):
            quantize_module_(block, schemes["acoustic"], nn.Linear, tinygemm_device=dev)
        elif _CODEC_LAYER.fullmatch(name):
            quantize_module_(block, schemes["codec"], nn.Linear, tinygemm_device=dev)
        elif name == "":  # what no layer owns: projections and heads, the token table
            at = block.acoustic_transformer
            names = {"input_projection", "time_projection", "llm_projection", "semantic_codebook_output",
                     "acoustic_codebook_output"}  # fmt: skip
            quantize_module_(at, schemes["acoustic"], nn.Linear, names=names, tinygemm_device=dev)
            quantize_module_(block.mm_audio_embeddings.tok_embeddings, schemes["embedding"], nn.Embedding)

    return hook


class _Method(nn.Module):
    """A program method over the shared model: computes in `dtype`; float inputs arrive and
    float outputs leave in `edge` (float32, or bf16 with bf16_edges)."""

    def __init__(self, model: VoxtralTts, dtype: torch.dtype, edge: torch.dtype = torch.float32):
        super().__init__()
        self.model, self.dtype, self.edge = model, dtype, edge


class _Prefill(_Method):
    def forward(self, token_ids: torch.Tensor, voice: torch.Tensor):
        tokens = self.model.embed_tokens(token_ids)  # [1, T, dim]
        n = voice.shape[1]
        embeds = torch.cat([tokens[:, :2], voice.to(tokens.dtype), tokens[:, 2 + n :]], dim=1)  # voice at [2, 2+N)
        h = self.model.hidden_states(embeds.to(self.dtype), torch.zeros(1, dtype=torch.long, device=embeds.device))[:, -1]  # [1, dim]
        return h.to(self.edge), self.model.acoustic_transformer.semantic_code(h)


class _Decode(_Method):
    def forward(self, codes: torch.Tensor, position: torch.Tensor):
        x = self.model.embed_codes(codes)[:, None].to(self.dtype)  # [1, 1, dim]
        h = self.model.hidden_states(x, position)[:, 0]  # [1, dim]
        return h.to(self.edge), self.model.acoustic_transformer.semantic_code(h)


class _TextPrefill(_Method):
    def forward(self, token_ids: torch.Tensor, position: torch.Tensor):
        x = self.model.embed_tokens(token_ids).to(self.dtype)  # [1, T, dim]
        h = self.model.hidden_states(x, position)[:, -1]  # [1, dim]
        return h.to(self.edge), self.model.acoustic_transformer.semantic_code(h)


class _SemanticLogits(_Method):
    def forward(self, hidden: torch.Tensor):
        return self.model.acoustic_transformer.semantic_logits(hidden.to(self.dtype)).to(self.edge)


class _AcousticStep(_Method):
    def forward(self, hidden: torch.Tensor, x: torch.Tensor, step: torch.Tensor):
        at = self.model.acoustic_transformer
        x_next = at.euler_step(hidden.to(self.dtype), x.to(self.dtype), step)
        return x_next.to(self.edge), quantize_acoustic(x_next.float(), at.levels)


class _Codec(nn.Module):
    def __init__(self, model: VoxtralTts):
        super().__init__()
        self.model = model

    def forward(self, codes: torch.Tensor):
        return self.model.decode(codes).float()


def method_specs(model: VoxtralTts, options: TtsExportOptions) -> dict[str, MethodSpec]:
    cfg = model.config
    dim, dtype = cfg.lm.dim, DTYPES[options.dtype]
    edge = torch.bfloat16 if options.bf16_edges else torch.float32
    n_codes = cfg.n_codebooks
    t = torch.export.Dim("n_tokens", min=4, max=options.max_prompt_tokens)
    n = torch.export.Dim("n_voice_rows", min=1, max=options.max_prompt_tokens - 3)
    codes = torch.full((1, n_codes), 2, dtype=torch.long)
    return {
        "prefill": MethodSpec(
            _Prefill(model, dtype, edge), (torch.ones(1, 8, dtype=torch.long), torch.zeros(1, 3, dim, dtype=edge)),
            {"token_ids": {1: t}, "voice": {1: n}},
        ),
        "text_prefill": MethodSpec(
            _TextPrefill(model, dtype, edge), (torch.ones(1, 8, dtype=torch.long), torch.tensor([5])), {"token_ids": {1: t}, "position": None},
        ),
        "decode": MethodSpec(_Decode(model, dtype, edge), (codes, torch.tensor([8]))),
        "semantic_logits": MethodSpec(_SemanticLogits(model, dtype, edge), (torch.zeros(1, dim, dtype=edge),)),
        "acoustic_step": MethodSpec(
            _AcousticStep(model, dtype, edge),
            (torch.zeros(1, dim, dtype=edge), torch.zeros(1, cfg.n_acoustic_codebooks, dtype=edge), torch.tensor([0])),
        ),
        "codec": MethodSpec(_Codec(model), (torch.full((1, options.max_codec_frames, n_codes), 2, dtype=torch.long),)),
        "first_chunk_codec": MethodSpec(_Codec(model), (torch.full((1, FIRST_CHUNK_FRAMES, n_codes), 2, dtype=torch.long),)),
    }  # fmt: skip


def export_tts(
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    options: TtsExportOptions | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Exports the checkpoint to `out_dir` (created); returns the program path."""
    from voxtral_native.export.checkpoint import check_checkpoint_dir

    options = options or TtsExportOptions()
    checkpoint_dir = check_checkpoint_dir(checkpoint_dir)
    out_dir = Path(out_dir)
    start = time.monotonic()

    def step(message: str) -> None:
        progress(f"[{time.monotonic() - start:7.1f}s] {message}")

    from voxtral_native.export.tts_config import TtsConfig

    config = TtsConfig.from_file(checkpoint_dir / "params.json")
    voices = read_voices(checkpoint_dir, config.lm.dim)  # first: a broken voice fails in seconds, not after the load
    step(f"loading {checkpoint_dir} (dtype {options.dtype}; quantization: "
         + ", ".join(f"{k} {v or 'none'}" for k, v in options.schemes.items()) + ")")
    device = AOTI_DEVICES.get(options.backend)  # None: ExecuTorch
    model = load_tts(
        checkpoint_dir, dtype=DTYPES[options.dtype], max_positions=options.max_positions,
        max_tokens=options.max_prompt_tokens, on_module_loaded=releasing_after(tts_quantizer(options.schemes, device)),
        uninitialized_state=device is None,  # ExecuTorch plans the caches itself: never touched here
    )  # fmt: skip
    model.audio_tokenizer.float()  # the codec computes in float32 whatever the LM's dtype
    if device is not None:
        model.to(device)  # AOTInductor compiles for the device of the traced tensors
    metadata = tts_metadata(model.config, options, activations_bf16=options.bf16_edges)
    assert metadata["lm_cache_slots"] == model.layers[0].attention.k_cache.shape[2]  # [1, Hkv, S, D]
    step("tracing prefill, text_prefill, decode, semantic_logits, acoustic_step, codec and first_chunk_codec (torch.export) "
         "and compiling for "
         + options.backend)
    specs = method_specs(model, options)
    del model  # the specs hold it; the traced programs hold what they need
    # prefill, text_prefill and decode share one LM cache
    pte, program_bytes = write_program(specs, metadata, options.backend, out_dir, share_mutable_buffers=True)
    del specs
    shutil.copyfile(checkpoint_dir / "tekken.json", out_dir / "tekken.json")
    index = write_voices(out_dir, voices)

    write_manifest(
        out_dir, "tts", options.backend, {"program": pte.name, "tokenizer": "tekken.json", "voices": VOICES_FILE},
        options={k: v for k, v in asdict(options).items() if k != "schemes"},
        model="Voxtral-4B-TTS-2603",
        source_checkpoint=str(checkpoint_dir.resolve()),
        program_bytes=program_bytes,
        quantization={k: str(v) if v else None for k, v in options.schemes.items()},
        voices=index.to_manifest(),
        params_defaults=list(config.defaults_used),
        metadata=metadata,
        export_seconds=round(time.monotonic() - start, 1),
    )
    step(f"wrote {pte} ({program_bytes / 1e6:.1f} MB) and {len(voices)} voices")
    return pte
