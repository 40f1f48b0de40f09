"""Voxtral-4B-TTS-2603 model definitions and loader on the tiny random checkpoint.

Parity is against independent implementations reading the same file:
- the LM against HF transformers' MistralModel (q/k rows permuted from Mistral's interleaved
  rotary layout to HF's half-split one), 1e-4;
- the acoustic transformer, semantic head, audio-code embedding and codec against the
  ExecuTorch 1.5.1 example (executorch/examples/models/voxtral_tts/model.py), 1e-5 (waveform
  1e-4 relative to its peak). That reference differs from Mistral's serving code in three
  known places: its codec ALiBi slopes are r**(i+1) (patched here to r**i, facts sheet
  section 4), it maps special codes (< 2) to code 0 instead of a zero latent (so the codec is
  compared on real codes >= 2 only), and its runner decodes in fixed 256-frame windows (the
  runner is not used here: its codec module decodes the whole clip, as ours does).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from voxtral_native.export.checkpoint import CheckpointError
from voxtral_native.export.config import ParamsError
from voxtral_native.export.models.tts import (
    CodecDecoder,
    VoxtralTts,
    alibi_slopes,
    codec_receptive_field_frames,
    decode_with_context,
    quantize_acoustic,
)
from voxtral_native.export.tts_checkpoint import load_tts
from voxtral_native.export.tts_config import TtsConfig
from voxtral_native.make_checkpoint import specs
from voxtral_native.make_checkpoint.safetensors_writer import write_bf16_safetensors
from voxtral_native.make_checkpoint.weights import bf16_chunks

N_CODEBOOKS = 37
SEMANTIC_CODES = 8192
LEVELS = 21


@pytest.fixture(scope="module")
def ours(tiny_tts_dir):
    return load_tts(tiny_tts_dir, max_positions=64, max_tokens=16)


@pytest.fixture(scope="module")
def reference(tiny_tts_dir):
    """The ExecuTorch example, loaded with its codec ALiBi slopes patched to r**i."""
    from executorch.examples.models.voxtral_tts import model as ref

    def slopes_r_pow_i(n_heads):
        r = 2.0 ** (-8.0 / n_heads)
        return torch.tensor([r**i for i in range(n_heads)], dtype=torch.float32)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ref, "_get_alibi_slopes", slopes_r_pow_i)
        model = ref.load_model(str(tiny_tts_dir))
    return model


def _checkpoint_tensors(ckpt_dir) -> dict[str, torch.Tensor]:
    with safe_open(ckpt_dir / "consolidated.safetensors", framework="pt") as f:
        return {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118


def _real_codes(generator, batch, frames) -> torch.Tensor:
    """[B, T, 37] shifted codes >= 2: semantic in [2, 8194), acoustic in [2, 23)."""
    semantic = torch.randint(2, 2 + SEMANTIC_CODES, (batch, frames, 1), generator=generator)
    acoustic = torch.randint(2, 2 + LEVELS, (batch, frames, N_CODEBOOKS - 1), generator=generator)
    return torch.cat([semantic, acoustic], dim=-1)


# --- LM vs HF transformers MistralModel -----------------------------------------------------


def _hf_mistral(ckpt_dir):
    from transformers import MistralConfig, MistralModel

    p = json.loads((ckpt_dir / "params.json").read_text())
    config = MistralConfig(
        vocab_size=p["vocab_size"], hidden_size=p["dim"], intermediate_size=p["hidden_dim"],
        num_hidden_layers=p["n_layers"], num_attention_heads=p["n_heads"], num_key_value_heads=p["n_kv_heads"],
        head_dim=p["head_dim"], rms_norm_eps=p["norm_eps"], sliding_window=None, max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": p["rope_theta"]},
    )  # fmt: skip
    config._attn_implementation = "eager"

    def to_half_split(w, n_heads):
        # Mistral rotates pairs (2i, 2i+1) of each head; HF rotates (i, i + D/2).
        return w.view(n_heads, p["head_dim"] // 2, 2, -1).transpose(1, 2).reshape(w.shape)

    t = _checkpoint_tensors(ckpt_dir)
    state = {"embed_tokens.weight": t["mm_audio_embeddings.tok_embeddings.weight"], "norm.weight": t["norm.weight"]}
    for i in range(p["n_layers"]):
        m, h = f"layers.{i}.", f"layers.{i}."
        state |= {
            h + "self_attn.q_proj.weight": to_half_split(t[m + "attention.wq.weight"], p["n_heads"]),
            h + "self_attn.k_proj.weight": to_half_split(t[m + "attention.wk.weight"], p["n_kv_heads"]),
            h + "self_attn.v_proj.weight": t[m + "attention.wv.weight"],
            h + "self_attn.o_proj.weight": t[m + "attention.wo.weight"],
            h + "mlp.gate_proj.weight": t[m + "feed_forward.w1.weight"],
            h + "mlp.up_proj.weight": t[m + "feed_forward.w3.weight"],
            h + "mlp.down_proj.weight": t[m + "feed_forward.w2.weight"],
            h + "input_layernorm.weight": t[m + "attention_norm.weight"],
            h + "post_attention_layernorm.weight": t[m + "ffn_norm.weight"],
        }
    model = MistralModel(config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_lm_hidden_states_match_hf_mistral(tiny_tts_dir):
    model = load_tts(tiny_tts_dir, max_positions=64, max_tokens=16)  # fresh KV cache
    hf = _hf_mistral(tiny_tts_dir)
    g = torch.Generator().manual_seed(1)
    prompt = model.embed_tokens(torch.tensor([[1, 25, 24, 24, 24, 36, 5000, 35, 25]]))
    frames = torch.randn(1, 4, model.config.lm.dim, generator=g)  # stand-ins for audio-code embeddings
    embeds = torch.cat([prompt, frames], dim=1)  # [1, 13, dim]
    with torch.no_grad():
        expected = hf(inputs_embeds=embeds).last_hidden_state
        # Our path as the runner drives it: one prefill call, then one position per call.
        got = [model.hidden_states(embeds[:, :9], torch.tensor([0]))]
        got += [model.hidden_states(embeds[:, p : p + 1], torch.tensor([p])) for p in range(9, 13)]
    err = (torch.cat(got, dim=1) - expected).abs().max().item()
    assert err < 1e-4, err  # measured 1.2e-6 (hidden states up to ~3)


# --- acoustic transformer vs ExecuTorch -------------------------------------------------------


def test_predict_velocity_matches_executorch(ours, reference):
    g = torch.Generator().manual_seed(2)
    dim = ours.config.lm.dim
    x_t, h = torch.randn(3, 36, generator=g), torch.randn(3, dim, generator=g)
    timesteps = torch.linspace(0, 1, 8)
    with torch.no_grad():
        for i in range(7):
            expected = reference.flow_head.predict_velocity(x_t, torch.full((3,), i), h)
            got = ours.acoustic_transformer.predict_velocity(x_t, timesteps[i : i + 1], h)
            assert (got - expected).abs().max().item() < 1e-5  # measured 1.9e-6
        # The unconditioned branch (h = 0) that classifier-free guidance batches beside it.
        zeros = torch.zeros_like(h)
        expected = reference.flow_head.predict_velocity(x_t, torch.full((3,), 3), zeros)
        got = ours.acoustic_transformer.predict_velocity(x_t, timesteps[3:4], zeros)
        assert (got - expected).abs().max().item() < 1e-5


def test_semantic_logits_match_executorch(ours, reference):
    h = torch.randn(4, ours.config.lm.dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference.flow_head.semantic_logits(h)
        got = ours.acoustic_transformer.semantic_logits(h)
        codes = ours.acoustic_transformer.semantic_code(h)
    assert got.shape == expected.shape == (4, 8320)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert (got[finite] - expected[finite]).abs().max().item() < 1e-5  # measured 0 (same matmul)
    assert torch.equal(codes, expected.argmax(dim=-1))


def test_flow_matching_step_matches_executorch(ours, reference):
    """Our whole acoustic step (7 Euler steps, CFG as one batch of 2) against the reference's
    eager forward, which draws its noise with torch.randn right before integrating."""
    h = torch.randn(4, ours.config.lm.dim, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    noise = torch.randn(4, 36)
    torch.manual_seed(5)
    with torch.no_grad():
        expected = reference.flow_head(h)  # [B, 37]: semantic, then 36 acoustic codes
        got = ours.acoustic_transformer.acoustic_codes(h, noise)
    assert (expected[:, 0] != 1).all()  # no END_AUDIO, whose frame the reference blanks
    assert got.dtype == torch.int64 and got.shape == (4, 36)
    assert torch.equal(got, expected[:, 1:])
    assert got.min() >= 2 and got.max() <= 22


def test_audio_code_embedding_matches_executorch(ours, reference):
    codes = _real_codes(torch.Generator().manual_seed(6), 2, 3)
    codes[0, 0, :] = 0  # EMPTY_AUDIO, END_AUDIO and the last code of each codebook are rows too
    codes[0, 1, :] = 1
    codes[1, 0, 0], codes[1, 0, 1:] = SEMANTIC_CODES + 1, LEVELS + 1
    with torch.no_grad():
        expected = reference.audio_token_embedding(codes.transpose(1, 2))  # takes [B, 37, T]
        got = ours.embed_codes(codes)
    assert got.shape == (2, 3, ours.config.lm.dim)
    assert (got - expected).abs().max().item() < 1e-5  # measured 0 (same rows summed)


# --- codec vs ExecuTorch ----------------------------------------------------------------------


def test_codec_waveform_matches_executorch(ours, reference):
    # 12 frames: longer than every stage's window (2, 4, 8, 16 steps), so windows are exercised.
    codes = _real_codes(torch.Generator().manual_seed(7), 2, 12)
    with torch.no_grad():
        expected = reference.codec_decoder(codes.transpose(1, 2))[:, 0]  # [B, T * 1920]
        got = ours.decode(codes)
    assert got.shape == expected.shape == (2, 12 * 1920)
    peak = expected.abs().max().item()
    assert (got - expected).abs().max().item() / peak < 1e-4  # measured 6.4e-7 (peak 0.16)

    # The comparison sees the slope convention: the reference's own r**(i+1) differs clearly.
    from executorch.examples.models.voxtral_tts import model as ref

    unpatched = [m for m in reference.codec_decoder.modules() if isinstance(m, ref.CodecAttention)]
    saved = [m.alibi_slopes for m in unpatched]
    try:
        for m in unpatched:
            m.alibi_slopes = ref._get_alibi_slopes(m.n_heads)
        with torch.no_grad():
            other = reference.codec_decoder(codes.transpose(1, 2))[:, 0]
    finally:
        for m, s in zip(unpatched, saved, strict=True):
            m.alibi_slopes = s
    assert (got - other).abs().max().item() / peak > 1e-3


def test_alibi_slopes_are_r_pow_i():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0**-i for i in range(8)]))
    assert alibi_slopes(8)[0] == 1.0


def test_special_codes_decode_to_a_zero_latent(ours):
    codes = _real_codes(torch.Generator().manual_seed(8), 1, 3)
    codes[0, 1, 0] = 0  # EMPTY semantic code
    codes[0, 2, 5] = 1  # END acoustic code
    latent = ours.audio_tokenizer.quantizer.dequantize(codes)  # [1, 32 + 36, 3]
    semantic_dim = ours.config.codec.semantic_dim
    assert torch.all(latent[0, :semantic_dim, 1] == 0)
    assert latent[0, semantic_dim + 4, 2] == 0
    # Real codes: FSQ value 2c / 20 - 1 after the shift, VQ entry embedding_sum / usage.
    c = codes[0, 0, 1].item()
    assert latent[0, semantic_dim, 0].item() == pytest.approx(2 * (c - 2) / 20 - 1)
    vq = ours.audio_tokenizer.quantizer.semantic_codebook
    s = codes[0, 0, 0].item() - 2
    assert torch.allclose(latent[0, :semantic_dim, 0], vq.embedding_sum[s] / vq.cluster_usage[s])


def test_weight_norm_folds_over_the_right_axis(tiny_tts_dir, ours):
    t = _checkpoint_tensors(tiny_tts_dir)
    blocks = ours.audio_tokenizer.decoder_blocks

    def folded(prefix, norm_dims):
        g, v = t[prefix + "original0"], t[prefix + "original1"]
        return g * v / v.norm(dim=norm_dims, keepdim=True)

    p = "audio_tokenizer.decoder_blocks.{}.conv.parametrizations.weight."
    # Conv1d weight [out, in, k]: one norm per output channel.
    assert torch.allclose(blocks[0].conv.weight, folded(p.format(0), (1, 2)), atol=1e-6)
    # ConvTranspose1d weight [in, out, k]: one norm per input channel (torch dim 0).
    weight = blocks[2].conv.weight
    assert torch.allclose(weight, folded(p.format(2), (1, 2)), atol=1e-6)
    assert not torch.allclose(weight, folded(p.format(2), (0, 2)), atol=1e-3)
    assert weight.dtype == torch.float32
    names = {name for name, _ in ours.named_parameters()}
    assert not any("parametrizations" in name for name in names)
    assert {f"audio_tokenizer.decoder_blocks.{i}.conv.weight" for i in (0, 2, 4, 6)} <= names
    assert "audio_tokenizer.output_proj.conv.weight" in names


# --- rounding and masking ----------------------------------------------------------------------


def test_acoustic_rounding_ties_go_to_even():
    # (x + 1) / 2 * 20 is exactly 2.5, 7.5, 12.5, 17.5 for these x: ties round to the even
    # level (2, 8, 12, 18), not half up (3, 8, 13, 18); + 2 is the special-code shift.
    x = torch.tensor([[-0.75, -0.25, 0.25, 0.75]])
    assert ((x + 1) / 2 * 20).tolist() == [[2.5, 7.5, 12.5, 17.5]]
    assert quantize_acoustic(x, LEVELS).tolist() == [[4, 10, 14, 20]]
    # Clamped to [-1, 1] first; exact levels unchanged.
    assert quantize_acoustic(torch.tensor([[-3.0, -1.0, 0.0, 1.0, 7.0]]), LEVELS).tolist() == [[2, 2, 12, 22, 22]]


def test_semantic_head_masks_empty_and_padding(tiny_tts_dir):
    config = TtsConfig.from_file(tiny_tts_dir / "params.json")
    head = VoxtralTts(config, max_positions=8, max_tokens=4).acoustic_transformer
    weight = torch.zeros_like(head.semantic_codebook_output.weight)  # [8320, dim]
    weight[0], weight[8300], weight[8194], weight[5] = 30.0, 20.0, 10.0, 1.0
    head.semantic_codebook_output.weight.data = weight
    h = torch.ones(1, config.acoustic.dim)
    logits = head.semantic_logits(h)
    assert logits[0, 0] == -math.inf and torch.all(logits[0, 8194:] == -math.inf)
    assert torch.isfinite(logits[0, 1:8194]).all()
    assert head.semantic_code(h).item() == 5  # rows 0, 8194 and 8300 would have won unmasked
    weight[1] = 5.0  # END_AUDIO stays selectable
    assert head.semantic_code(h).item() == 1


# --- params.json quirks ------------------------------------------------------------------------


def _params(ckpt_dir) -> dict:
    return json.loads((ckpt_dir / "params.json").read_text())


def _write_checkpoint(params: dict, tiny_tts_dir, out):
    """A checkpoint directory whose tensors follow `params` (random values, seed 0)."""
    out.mkdir()
    write_bf16_safetensors(out / "consolidated.safetensors", specs.tts_tensors(params), lambda t: bf16_chunks(t, 0))
    shutil.copy(tiny_tts_dir / "tekken.json", out / "tekken.json")
    (out / "params.json").write_text(json.dumps(params))
    return out


def test_acoustic_defaults_are_used_and_recorded(tiny_tts_dir, tmp_path):
    params = _params(tiny_tts_dir)
    acoustic = params["multimodal"]["audio_model_args"]["acoustic_transformer_args"]
    assert "n_decoding_steps" not in acoustic and "norm_eps" not in acoustic  # as in the released file
    config = TtsConfig.from_params(params)
    assert config.n_decoding_steps == 7 and config.acoustic.norm_eps == 1e-5
    prefix = "multimodal.audio_model_args.acoustic_transformer_args."
    assert set(config.defaults_used) == {prefix + "n_decoding_steps", prefix + "norm_eps"}

    acoustic |= {"n_decoding_steps": 5, "norm_eps": 1e-6}
    config = TtsConfig.from_params(params)
    assert config.n_decoding_steps == 5 and config.acoustic.norm_eps == 1e-6
    assert not any("acoustic" in d for d in config.defaults_used)

    acoustic["n_decoding_steps"] = "7"
    with pytest.raises(ParamsError, match=r"acoustic_transformer_args\.n_decoding_steps' must be an integer"):
        TtsConfig.from_params(params, tmp_path / "params.json")


def test_lm_without_sliding_window_attends_over_max_positions(tiny_tts_dir):
    params = _params(tiny_tts_dir)
    assert "sliding_window" not in params
    config = TtsConfig.from_params(params)
    assert config.lm.sliding_window == params["max_seq_len"]
    model = VoxtralTts(config, max_positions=40, max_tokens=8)
    assert model.layers[0].attention.window == 40
    assert model.layers[0].attention.k_cache.shape[2] == 40 + 8 - 1


def test_codebook_sizes_string_equals_separate_fields(tiny_tts_dir):
    params = _params(tiny_tts_dir)
    audio = params["multimodal"]["audio_model_args"]
    fields = TtsConfig.from_params(params)
    for key in ("semantic_codebook_size", "acoustic_codebook_size", "n_acoustic_codebook"):
        del audio[key]
    audio["codebook_sizes"] = ",".join(["8192"] + ["21"] * 36)
    assert TtsConfig.from_params(params) == fields
    assert fields.codebook_sizes == (8194,) + (23,) * 36
    audio["codebook_sizes"] = "8192,21,x"
    with pytest.raises(ParamsError, match="codebook_sizes"):
        TtsConfig.from_params(params)


def test_attention_width_differs_from_dim_everywhere(tiny_tts_dir, tmp_path):
    params = _params(tiny_tts_dir)
    codec = params["multimodal"]["audio_tokenizer_args"]
    codec["head_dim"] = 32  # 8 x 32 = 256 != codec dim 128 (LM and acoustic: 8 x 16 != 64 already)
    config = TtsConfig.from_params(params)
    for cfg in (config.lm, config.acoustic):
        assert cfg.n_heads * cfg.head_dim != cfg.dim
    model = load_tts(_write_checkpoint(params, tiny_tts_dir, tmp_path / "ckpt"), max_positions=16, max_tokens=4)
    wq = model.audio_tokenizer.decoder_blocks[1].layers[0].attention.wq
    assert tuple(wq.weight.shape) == (256, 128)
    audio = model.decode(_real_codes(torch.Generator().manual_seed(9), 1, 3))
    assert audio.shape == (1, 3 * 1920) and torch.isfinite(audio).all()


def test_codec_stage_depths_may_differ(tiny_tts_dir, tmp_path):
    params = _params(tiny_tts_dir)
    params["multimodal"]["audio_tokenizer_args"]["decoder_transformer_lengths_str"] = "1,3,2,1"
    model = load_tts(_write_checkpoint(params, tiny_tts_dir, tmp_path / "ckpt"), max_positions=16, max_tokens=4)
    blocks = model.audio_tokenizer.decoder_blocks
    assert [len(blocks[i].layers) for i in (1, 3, 5, 7)] == [1, 3, 2, 1]
    assert [blocks[i].layers[0].attention.window for i in (1, 3, 5, 7)] == [2, 4, 8, 16]
    audio = model.decode(_real_codes(torch.Generator().manual_seed(10), 1, 2))
    assert audio.shape == (1, 2 * 1920) and torch.isfinite(audio).all()


def test_bad_codec_fields_are_named(tiny_tts_dir, tmp_path):
    params = _params(tiny_tts_dir)
    codec = params["multimodal"]["audio_tokenizer_args"]
    codec["decoder_convs_strides_str"] = "1,2,2"
    with pytest.raises(ParamsError, match="one entry per stage"):
        TtsConfig.from_params(params, tmp_path / "params.json")
    codec["decoder_convs_strides_str"] = "1,2,2,2"
    codec["use_biases"] = True
    with pytest.raises(ParamsError, match=r"audio_tokenizer_args\.use_biases' = True is not supported"):
        TtsConfig.from_params(params, tmp_path / "params.json")
    del codec["use_biases"], codec["qk_norm_eps"]
    where = re.escape(f"{tmp_path / 'params.json'}: missing field 'multimodal.audio_tokenizer_args.qk_norm_eps'")
    with pytest.raises(ParamsError, match=where):
        TtsConfig.from_params(params, tmp_path / "params.json")


# --- loader errors -----------------------------------------------------------------------------


def _broken_copy(tiny_tts_dir, tmp_path, edit):
    out = tmp_path / "ckpt"
    out.mkdir()
    for name in ("params.json", "tekken.json"):
        shutil.copy(tiny_tts_dir / name, out / name)
    tensors = _checkpoint_tensors(tiny_tts_dir)
    edit(tensors)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, str(out / "consolidated.safetensors"))
    return out


KEY = "audio_tokenizer.decoder_blocks.3.layers.1.attention.k_norm.weight"


def test_missing_tensor_is_named(tiny_tts_dir, tmp_path):
    ckpt = _broken_copy(tiny_tts_dir, tmp_path, lambda t: t.pop(KEY))
    with pytest.raises(CheckpointError) as e:
        load_tts(ckpt, max_positions=16, max_tokens=4)
    assert str(ckpt / "consolidated.safetensors") in str(e.value) and f"missing 1 tensor(s): {KEY}" in str(e.value)


def test_unexpected_tensor_is_named(tiny_tts_dir, tmp_path):
    extra = "audio_tokenizer.encoder_blocks.0.conv.weight"  # e.g. a codec encoder, which we do not build
    ckpt = _broken_copy(tiny_tts_dir, tmp_path, lambda t: t.update({extra: torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError) as e:
        load_tts(ckpt, max_positions=16, max_tokens=4)
    assert str(ckpt / "consolidated.safetensors") in str(e.value) and f"unexpected 1 tensor(s): {extra}" in str(e.value)


def test_wrong_shape_is_named(tiny_tts_dir, tmp_path):
    key = "audio_tokenizer.decoder_blocks.2.conv.parametrizations.weight.original0"  # g of a ConvTranspose
    ckpt = _broken_copy(tiny_tts_dir, tmp_path, lambda t: t.update({key: t[key].reshape(1, 1, -1)}))
    with pytest.raises(CheckpointError) as e:
        load_tts(ckpt, max_positions=16, max_tokens=4)
    message = str(e.value)
    assert str(ckpt / "consolidated.safetensors") in message and f"'{key}' has shape [1, 1, 128]" in message


def test_bf16_load_folds_weight_norm_in_float32_then_casts(tiny_tts_dir, ours):
    model = load_tts(tiny_tts_dir, dtype=torch.bfloat16, max_positions=16, max_tokens=4)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.layers[0].attention.k_cache.dtype == torch.bfloat16
    # Folded from the float32 g and v, rounded once: equal to the float32 fold cast to bf16.
    for i in (0, 2, 4, 6):
        folded = ours.audio_tokenizer.decoder_blocks[i].conv.weight.to(torch.bfloat16)
        assert torch.equal(model.audio_tokenizer.decoder_blocks[i].conv.weight, folded)
    output_conv = ours.audio_tokenizer.output_proj.conv.weight
    assert torch.equal(model.audio_tokenizer.output_proj.conv.weight, output_conv.to(torch.bfloat16))


# --- streaming codec: chunks with left context equal the whole decode ---------------------------

CONTEXT_FRAMES = 25  # the facts sheet's streaming context (ExecuTorch, vllm-omni)
ROUND_OFF_F64 = 2e-14  # of the waveform peak: 10x the float64 round-off measured below


def _chunks(n_frames: int, first: int, every: int) -> list[tuple[int, int]]:
    """The streaming schedule as frame ranges [start, end): `first` frames, then `every` at a time."""
    bounds = [0, *range(min(first, n_frames), n_frames, every), n_frames]
    return [(s, e) for s, e in zip(bounds, bounds[1:], strict=False) if e > s]


def _float64_codec(codec, monkeypatch):
    """A float64 copy of a codec decoder, RMSNorm included (it computes in float32 by design, for
    bf16 models, which would put float32 round-off back in). Round-off ~1e-15 then lets a test
    see effects far smaller than float32's ~1e-7."""
    from voxtral_native.export.models import layers

    def rms_norm_in_input_dtype(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    monkeypatch.setattr(layers.RMSNorm, "forward", rms_norm_in_input_dtype)
    return copy.deepcopy(codec).double()


def test_chunk_schedule():
    assert _chunks(70, 5, 25) == [(0, 5), (5, 30), (30, 55), (55, 70)]
    assert _chunks(3, 1, 1) == [(0, 1), (1, 2), (2, 3)]
    assert _chunks(4, 5, 25) == [(0, 4)]


def test_chunked_codec_decode_with_25_frames_of_context_equals_whole(ours):
    # 70 frames: chunks of 25 with 25 frames of context, the last chunk short, the first 5 frames
    # decoded from the utterance start (no context exists yet: same left edge as the whole decode).
    codes = _real_codes(torch.Generator().manual_seed(11), 2, 70)
    with torch.no_grad():
        whole = ours.decode(codes)  # [2, 70 * 1920]
        peak = whole.abs().max().item()
        for first, every in ((5, 25), (1, 1)):
            chunks = _chunks(70, first, every)
            audio = torch.cat([decode_with_context(ours.decode, codes, s, e, CONTEXT_FRAMES) for s, e in chunks], -1)
            assert audio.shape == whole.shape
            # float32 round-off of differently shaped calls: measured 4.9e-7 in both schedules (peak 0.18)
            assert (audio - whole).abs().max().item() / peak < 5e-6, (first, every)


def test_codec_receptive_field_is_exact_and_tight(ours, monkeypatch):
    """With receptive-field frames of context every kept sample equals the whole decode's; with
    one frame less the first 960 samples of every kept frame change (the replicate padding of
    the chunk's first frame reaches the first 4 of the kept frame's 8 output-conv steps).
    That change is ~1e-11 of the peak on this checkpoint, below float32 round-off, hence float64."""
    rf = codec_receptive_field_frames(ours.config)
    assert rf == 21
    codec = _float64_codec(ours.audio_tokenizer, monkeypatch)
    codes = _real_codes(torch.Generator().manual_seed(12), 1, 50)
    with torch.no_grad():
        whole = codec(codes).view(1, 50, 1920)
        peak = whole.abs().max().item()
        frames = range(rf, 50)  # frames with rf frames before them: chunks of 1, each its own first kept frame
        exact = torch.stack([decode_with_context(codec, codes, f, f + 1, rf)[0] for f in frames])  # [29, 1920]
        short = torch.stack([decode_with_context(codec, codes, f, f + 1, rf - 1)[0] for f in frames])
    expected = whole[0, rf:]
    assert (exact - expected).abs().max().item() / peak < ROUND_OFF_F64  # measured 2.0e-15
    short_err = (short - expected).abs() / peak  # [29, 1920]
    assert short_err[:, 960:].max().item() < ROUND_OFF_F64  # measured 1.8e-15
    assert short_err[:, :960].amax(dim=1).min().item() > ROUND_OFF_F64  # every frame; measured >= 1.4e-13, max 3.7e-12


@pytest.mark.parametrize(
    ("codec_fields", "expected_rf"),
    [
        # Expected values walked back by hand as in codec_receptive_field_frames' docstring.
        ({}, 21),  # the released time structure
        ({"stage_lengths": (1, 3, 2, 1)}, 19),
        ({"kernels": (5, 4, 6, 2), "patch_kernel": 5, "sliding_window": 8}, 15),
        ({"strides": (1, 2, 3, 2), "kernels": (3, 4, 5, 4)}, 18),
    ],
)
def test_codec_receptive_field_formula_on_other_shapes(ours, monkeypatch, codec_fields, expected_rf):
    """The formula, not just the number 21: random decoders (layer scales 1, so long paths are not
    damped) of other kernels, strides, depths and windows are exact at the receptive field and
    change with one frame less."""
    config = dataclasses.replace(ours.config, codec=dataclasses.replace(ours.config.codec, **codec_fields))
    rf = codec_receptive_field_frames(config)
    assert rf == expected_rf
    torch.manual_seed(13)
    codec = CodecDecoder(config).eval()
    torch.nn.init.normal_(codec.quantizer.semantic_codebook.embedding_sum)  # zeros at init: no semantic signal
    codec = _float64_codec(codec, monkeypatch)
    n = rf + 4
    codes = _real_codes(torch.Generator().manual_seed(14), 1, n)
    with torch.no_grad():
        whole = codec(codes)
        spf = whole.shape[-1] // n
        peak = whole.abs().max().item()
        for f in range(rf, n):
            expected = whole[:, f * spf : (f + 1) * spf]
            exact = decode_with_context(codec, codes, f, f + 1, rf)
            short = decode_with_context(codec, codes, f, f + 1, rf - 1)
            # measured <= 3.2e-15 (exact) and >= 8.3e-9 (one frame short) over the four shapes
            assert (exact - expected).abs().max().item() / peak < ROUND_OFF_F64, f
            assert (short - expected).abs().max().item() / peak > ROUND_OFF_F64, f


def test_released_codec_context_covers_its_receptive_field(ours):
    # Released codec (facts sheet section 2): kernels 3,4,4,4, strides 1,2,2,2, 2 layers per stage,
    # window 16 at the last stage halved per upsampling, output conv k7, 240 samples per step.
    released = dataclasses.replace(
        ours.config.codec, dim=1024, hidden_dim=4096, head_dim=128, semantic_dim=256, kernels=(3, 4, 4, 4),
        strides=(1, 2, 2, 2), stage_lengths=(2, 2, 2, 2), sliding_window=16, half_window_upon_downsampling=True,
        patch_kernel=7, patch_size=240,
    )  # fmt: skip
    assert released.stage_windows == (2, 4, 8, 16) and released.samples_per_frame == 1920
    rf = codec_receptive_field_frames(dataclasses.replace(ours.config, codec=released))
    assert rf == 21 <= CONTEXT_FRAMES
    assert codec_receptive_field_frames(released) == rf  # a CodecConfig is accepted too
    # The tiny checkpoint differs from the released codec in widths only (dim 128, head_dim 16,
    # hidden 512, semantic_dim 32), not in anything that sets the receptive field, so the tests
    # above on it test the released time structure.
    time_fields = ("kernels", "strides", "stage_lengths", "stage_windows", "patch_kernel", "patch_size")
    assert all(getattr(ours.config.codec, k) == getattr(released, k) for k in time_fields)
    assert codec_receptive_field_frames(ours.config) == rf
