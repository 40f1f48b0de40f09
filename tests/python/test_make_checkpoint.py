"""make_checkpoint: the reference loaders accept its files, real key names and shapes,
a real Tekken tokenizer, determinism, clear errors.

The key/shape tables below restate the shared facts sheet (voxtral-facts.md)
independently of specs.py.
The ExecuTorch 1.5.1 example loaders and mistral_common are used as oracles only.
"""

import io
import json
import math
import zipfile
from importlib import resources

import numpy as np
import pytest
import torch
from safetensors import safe_open

from voxtral_native.make_checkpoint import make_checkpoint, specs
from voxtral_native.make_checkpoint.weights import to_bf16

# --- expected layout, from the facts sheet ---------------------------------------------


def _block(prefix, dim, n_heads, n_kv_heads, head_dim, hidden):
    q, kv = n_heads * head_dim, n_kv_heads * head_dim
    return {
        f"{prefix}attention_norm.weight": (dim,),
        f"{prefix}attention.wq.weight": (q, dim),
        f"{prefix}attention.wk.weight": (kv, dim),
        f"{prefix}attention.wv.weight": (kv, dim),
        f"{prefix}attention.wo.weight": (dim, q),
        f"{prefix}ffn_norm.weight": (dim,),
        f"{prefix}feed_forward.w1.weight": (hidden, dim),
        f"{prefix}feed_forward.w2.weight": (dim, hidden),
        f"{prefix}feed_forward.w3.weight": (hidden, dim),
    }


def _args(a):
    return a["dim"], a["n_heads"], a["n_kv_heads"], a["head_dim"], a["hidden_dim"]


def expected_stt_shapes(p):
    d = p["dim"]
    enc = p["multimodal"]["whisper_model_args"]["encoder_args"]
    ed, eq = enc["dim"], enc["n_heads"] * enc["head_dim"]
    mels = enc["audio_encoding_args"]["num_mel_bins"]
    pooled = ed * p["multimodal"]["whisper_model_args"]["downsample_args"]["downsample_factor"]
    m = "mm_streams_embeddings.embedding_module."
    w = m + "whisper_encoder."
    shapes = {
        m + "tok_embeddings.weight": (p["vocab_size"], d),
        w + "conv_layers.0.conv.weight": (ed, mels, 3),
        w + "conv_layers.0.conv.bias": (ed,),
        w + "conv_layers.1.conv.weight": (ed, ed, 3),
        w + "conv_layers.1.conv.bias": (ed,),
        w + "transformer.norm.weight": (ed,),
        m + "audio_language_projection.0.weight": (d, pooled),
        m + "audio_language_projection.2.weight": (d, d),
        "norm.weight": (d,),
    }
    for i in range(enc["n_layers"]):
        layer = f"{w}transformer.layers.{i}."
        shapes |= _block(layer, *_args(enc))
        shapes |= {
            layer + "attention.wq.bias": (eq,),
            layer + "attention.wv.bias": (eq,),
            layer + "attention.wo.bias": (ed,),
            layer + "feed_forward.w2.bias": (ed,),
        }
    t = p["ada_rms_norm_t_cond_dim"]
    for i in range(p["n_layers"]):
        shapes |= _block(f"layers.{i}.", *_args(p))
        shapes |= {
            f"layers.{i}.ada_rms_norm_t_cond.0.weight": (t, d),
            f"layers.{i}.ada_rms_norm_t_cond.2.weight": (d, t),
        }
    return shapes


def expected_tts_shapes(p):
    d = p["dim"]
    am = p["multimodal"]["audio_model_args"]
    at = am["acoustic_transformer_args"]
    c = p["multimodal"]["audio_tokenizer_args"]
    codebook_rows = 128 * math.ceil((am["semantic_codebook_size"] + 2 + 36 * (21 + 2)) / 128)
    shapes = {
        "mm_audio_embeddings.tok_embeddings.weight": (p["vocab_size"], d),
        "mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight": (codebook_rows, d),
        "norm.weight": (d,),
        "acoustic_transformer.input_projection.weight": (at["dim"], 36),
        "acoustic_transformer.time_projection.weight": (at["dim"], at["dim"]),
        "acoustic_transformer.llm_projection.weight": (at["dim"], d),
        "acoustic_transformer.semantic_codebook_output.weight": (8320, at["dim"]),
        "acoustic_transformer.acoustic_codebook_output.weight": (36, at["dim"]),
        "acoustic_transformer.norm.weight": (at["dim"],),
        "audio_tokenizer.quantizer.semantic_codebook.cluster_usage": (8192,),
        "audio_tokenizer.quantizer.semantic_codebook.embedding_sum": (8192, c["semantic_dim"]),
    }
    for i in range(p["n_layers"]):
        shapes |= _block(f"layers.{i}.", *_args(p))
    for i in range(at["n_layers"]):
        shapes |= _block(f"acoustic_transformer.layers.{i}.", *_args(at))
    cd = c["dim"]
    conv_shapes = {
        0: (cd, c["semantic_dim"] + 36, 3),  # Conv1d [out, in, k]
        2: (cd, cd, 4),  # ConvTranspose1d [in, out, k]
        4: (cd, cd, 4),
        6: (cd, cd, 4),
    }
    for block, shape in conv_shapes.items():
        prefix = f"audio_tokenizer.decoder_blocks.{block}.conv.parametrizations.weight."
        shapes |= {prefix + "original0": (shape[0], 1, 1), prefix + "original1": shape}
    prefix = "audio_tokenizer.output_proj.conv.parametrizations.weight."
    shapes |= {prefix + "original0": (240, 1, 1), prefix + "original1": (240, cd, 7)}
    for block in (1, 3, 5, 7):
        for j in range(2):
            layer = f"audio_tokenizer.decoder_blocks.{block}.layers.{j}."
            shapes |= _block(layer, *_args(c))
            shapes |= {
                layer + "attention.q_norm.weight": (c["n_heads"] * c["head_dim"],),
                layer + "attention.k_norm.weight": (c["n_kv_heads"] * c["head_dim"],),
                layer + "attention_scale": (cd,),
                layer + "ffn_scale": (cd,),
            }
    return shapes


EXPECTED = {"stt": expected_stt_shapes, "tts": expected_tts_shapes}
PARAMS = {"stt": specs.stt_params, "tts": specs.tts_params}
TENSORS = {"stt": specs.stt_tensors, "tts": specs.tts_tensors}


def _flat_keys(d, prefix=""):
    keys = set()
    for k, v in d.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= _flat_keys(v, prefix + k + ".")
    return keys


def _ckpt_dir(request, model):
    return request.getfixturevalue(f"tiny_{model}_dir")


# --- params and tensor layout ----------------------------------------------------------


def test_full_stt_params_are_the_released_values():
    p = specs.stt_params("full")
    lm = {k: p[k] for k in ("dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim", "vocab_size")}
    assert list(lm.values()) == [3072, 26, 32, 8, 128, 9216, 131072]
    assert (p["rope_theta"], p["norm_eps"], p["ada_rms_norm_t_cond_dim"], p["sliding_window"]) == (1e6, 1e-5, 32, 8192)
    w = p["multimodal"]["whisper_model_args"]
    e = w["encoder_args"]
    assert (e["dim"], e["n_layers"], e["n_heads"], e["head_dim"], e["hidden_dim"]) == (1280, 32, 32, 64, 5120)
    assert (e["rope_theta"], e["norm_eps"], e["sliding_window"]) == (1e6, 1e-5, 750)
    assert e["audio_encoding_args"]["num_mel_bins"] == 128
    assert e["audio_encoding_args"]["global_log_mel_max"] == 1.5
    assert w["downsample_args"]["downsample_factor"] == 4


def test_full_tts_params_are_the_released_values():
    p = specs.tts_params("full")
    am = p["multimodal"]["audio_model_args"]
    assert (am["semantic_codebook_size"], am["acoustic_codebook_size"], am["n_acoustic_codebook"]) == (8192, 21, 36)
    assert (am["audio_token_id"], am["begin_audio_token_id"]) == (24, 25)
    at = am["acoustic_transformer_args"]
    assert (at["dim"], at["n_layers"], at["n_heads"], at["n_kv_heads"], at["head_dim"], at["hidden_dim"]) == (
        3072, 3, 32, 8, 128, 9216
    )  # fmt: skip
    assert at["dim"] == p["dim"]
    c = p["multimodal"]["audio_tokenizer_args"]
    assert (c["dim"], c["hidden_dim"], c["n_heads"], c["n_kv_heads"], c["head_dim"]) == (1024, 4096, 8, 8, 128)
    assert (c["norm_eps"], c["qk_norm_eps"], c["attn_sliding_window_size"], c["pretransform_patch_size"]) == (
        1e-2, 1e-6, 16, 240
    )  # fmt: skip
    assert (c["decoder_transformer_lengths_str"], c["decoder_convs_kernels_str"], c["decoder_convs_strides_str"]) == (
        "2,2,2,2", "3,4,4,4", "1,2,2,2"
    )  # fmt: skip
    assert c["semantic_dim"] == 256
    assert list(c["voice"]) == list(specs.TTS_VOICES) and len(c["voice"]) == 20


@pytest.mark.parametrize(("model", "n_tensors", "n_bytes"), [("stt", 711, 8.86e9), ("tts", 386, 8.0e9)])
def test_full_tensor_specs_are_the_released_layout(model, n_tensors, n_bytes):
    params = PARAMS[model]("full")
    shapes = {t.name: t.shape for t in TENSORS[model](params)}
    assert shapes == EXPECTED[model](params)
    assert len(shapes) == n_tensors  # as in the released consolidated.safetensors
    assert 2 * sum(math.prod(s) for s in shapes.values()) == pytest.approx(n_bytes, rel=0.005)


@pytest.mark.parametrize("model", ["stt", "tts"])
def test_tiny_has_every_field_of_full_and_keeps_the_structure(model, request):
    tiny = json.loads((_ckpt_dir(request, model) / "params.json").read_text())
    assert _flat_keys(tiny) == _flat_keys(PARAMS[model]("full"))
    assert tiny["vocab_size"] == 131072 and tiny["tied_embeddings"]
    assert tiny["n_heads"] == 4 * tiny["n_kv_heads"]
    assert tiny["n_heads"] * tiny["head_dim"] != tiny["dim"]
    if model == "stt":
        w = tiny["multimodal"]["whisper_model_args"]
        assert w["downsample_args"]["downsample_factor"] == 4
        assert w["encoder_args"]["audio_encoding_args"]["num_mel_bins"] == 128
        assert tiny["ada_rms_norm_t_cond"]
    else:
        am, c = tiny["multimodal"]["audio_model_args"], tiny["multimodal"]["audio_tokenizer_args"]
        assert am["acoustic_transformer_args"]["n_layers"] == 3
        assert am["acoustic_transformer_args"]["dim"] == tiny["dim"]
        assert am["audio_encoding_args"]["num_codebooks"] == 37
        assert (am["semantic_codebook_size"], am["acoustic_codebook_size"]) == (8192, 21)
        assert (c["decoder_convs_kernels_str"], c["decoder_convs_strides_str"]) == ("3,4,4,4", "1,2,2,2")
        assert (c["n_heads"], c["pretransform_patch_size"], c["attn_sliding_window_size"]) == (8, 240, 16)


@pytest.mark.parametrize("model", ["stt", "tts"])
def test_tiny_safetensors_has_the_expected_keys_shapes_and_bf16(model, request):
    ckpt = _ckpt_dir(request, model)
    expected = EXPECTED[model](json.loads((ckpt / "params.json").read_text()))
    with safe_open(ckpt / "consolidated.safetensors", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        slices = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        found = {k: tuple(s.get_shape()) for k, s in slices.items()}
        assert {s.get_dtype() for s in slices.values()} == {"BF16"}
    assert found == expected


def test_tiny_values_are_sane(tiny_tts_dir):
    from safetensors.torch import load_file

    tensors = {k: v.float() for k, v in load_file(tiny_tts_dir / "consolidated.safetensors").items()}
    for name, t in tensors.items():
        assert torch.isfinite(t).all() and t.std() > 0, name
        if name.endswith("norm.weight"):
            assert abs(t.mean().item() - 1) < 0.05, name
    assert (tensors["audio_tokenizer.quantizer.semantic_codebook.cluster_usage"] > 0).all()
    wq = tensors["layers.0.attention.wq.weight"]
    assert wq.std().item() == pytest.approx(wq.shape[1] ** -0.5, rel=0.1)


@pytest.mark.parametrize("model", ["stt", "tts"])
def test_same_seed_same_bytes_other_seed_other_weights(model, request, tmp_path):
    first = _ckpt_dir(request, model)
    again = make_checkpoint(model, "tiny", tmp_path / "again")
    other = make_checkpoint(model, "tiny", tmp_path / "other", seed=1)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    assert (other / "consolidated.safetensors").read_bytes() != (first / "consolidated.safetensors").read_bytes()
    assert (other / "params.json").read_bytes() == (first / "params.json").read_bytes()


def test_bf16_rounds_to_nearest_even_like_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_000, dtype=np.float32) * np.float32(100)
    # Exact halfway cases (low 16 bits 0x8000), with even and odd kept bits.
    ties = ((rng.integers(0, 0x7F00, 1000, dtype=np.uint32) << 16) | 0x8000).view(np.float32)
    x = np.concatenate([x, ties, -ties])
    expected = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(to_bf16(x.copy()), expected)


# --- the ExecuTorch reference loaders --------------------------------------------------


def _load_with_reference(ref, model_cls, ckpt, monkeypatch, capsys):
    """Run ref.load_model; return the model, the parameters and keys it did not get, its log."""
    reports = []
    original = model_cls.load_state_dict

    def recording(self, *args, **kwargs):
        params = {n for n, _ in self.named_parameters(remove_duplicate=False)}
        result = original(self, *args, **kwargs)
        reports.append(([k for k in result.missing_keys if k in params], result.unexpected_keys))
        return result

    monkeypatch.setattr(model_cls, "load_state_dict", recording)
    model = ref.load_model(str(ckpt))
    [(missing_params, unexpected)] = reports
    with safe_open(ckpt / "consolidated.safetensors", framework="pt") as f:
        unmapped = [k for k in f.keys() if ref._map_checkpoint_key(k) is None]  # noqa: SIM118
    return model, missing_params, unexpected, unmapped, capsys.readouterr().out


def test_executorch_realtime_reference_loads_and_runs_tiny_stt(tiny_stt_dir, monkeypatch, capsys):
    from executorch.examples.models.voxtral_realtime import model as ref

    model, missing, unexpected, unmapped, log = _load_with_reference(
        ref, ref.VoxtralRealtimeModel, tiny_stt_dir, monkeypatch, capsys
    )
    assert (missing, unexpected, unmapped) == (["decoder.output.weight"], [], [])  # output is tied
    assert "WARNING" not in log and "0 unexpected missing" in log

    with torch.no_grad():
        audio = model.encode_audio(torch.randn(1, 128, 16))  # 16 mel frames -> 2 audio tokens
        tokens = torch.tensor([[1, 32]])
        logits = model.text_decoder(audio + model.token_embedding(tokens), torch.arange(2), model.t_cond)
    assert audio.shape == (1, 2, model.config.dim)
    assert logits.shape == (1, 2, 131072) and torch.isfinite(logits).all()


def test_executorch_tts_reference_loads_and_runs_tiny_tts(tiny_tts_dir, monkeypatch, capsys):
    from executorch.examples.models.voxtral_tts import model as ref
    from executorch.examples.models.voxtral_tts.voice import load_voice_from_model_dir

    model, missing, unexpected, unmapped, log = _load_with_reference(
        ref, ref.VoxtralTTSModel, tiny_tts_dir, monkeypatch, capsys
    )
    assert (missing, unexpected, unmapped) == ([], [], [])
    assert "WARNING" not in log and "0 unexpected missing" in log

    cfg = model.config
    with torch.no_grad():
        hidden = model.decoder(model.decoder.tok_embeddings(torch.tensor([[1, 25, 24, 24]])), torch.arange(4))[:, -1]
        semantic = model.flow_head.semantic_logits(hidden)
        velocity = model.flow_head.predict_velocity(torch.randn(1, 36), torch.tensor([0]), hidden)
        codes = torch.randint(2, 23, (1, 37, 5))
        frame_embedding = model.audio_token_embedding(codes[..., :1])
        waveform = model.codec_decoder(codes)
    assert torch.isfinite(semantic[:, 2:8194]).all() and torch.isfinite(velocity).all()
    assert frame_embedding.shape == (1, 1, cfg.dim)
    assert waveform.shape == (1, 1, 5 * 1920) and torch.isfinite(waveform).all()
    assert waveform.abs().max() < 1

    frames = json.loads((tiny_tts_dir / "tekken.json").read_text())["audio"]["voice_num_audio_tokens"]
    for name, n in frames.items():
        voice, path = load_voice_from_model_dir(tiny_tts_dir, name, dim=cfg.dim)
        assert voice.shape == (n, cfg.dim) and path == tiny_tts_dir / "voice_embedding" / f"{name}.pt"
        assert f"{name}/data/0" in zipfile.ZipFile(path).namelist()
        assert torch.load(path, weights_only=True).dtype == torch.bfloat16


@pytest.mark.parametrize("model", ["stt", "tts"])
def test_executorch_configs_read_full_params(model, tmp_path):
    (tmp_path / "params.json").write_text(json.dumps(PARAMS[model]("full")))
    if model == "stt":
        from executorch.examples.models.voxtral_realtime.model import VoxtralRealtimeConfig

        cfg = VoxtralRealtimeConfig.from_params_json(str(tmp_path / "params.json"))
        assert (cfg.dim, cfg.enc_dim, cfg.downsample_factor, cfg.ada_rms_norm_t_cond_dim) == (3072, 1280, 4, 32)
    else:
        from executorch.examples.models.voxtral_tts.model import VoxtralTTSConfig

        cfg = VoxtralTTSConfig.from_params_json(str(tmp_path / "params.json"))
        assert (cfg.n_codebooks, cfg.downsample_factor, cfg.frame_rate, cfg.sampling_rate) == (37, 1920, 12.5, 24000)
        assert (cfg.codec_dim, cfg.codec_decoder_transformer_lengths, cfg.at_n_layers) == (1024, (2, 2, 2, 2), 3)


# --- tekken.json through mistral_common ------------------------------------------------


def _wav_bytes(n_samples, rate):
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(n_samples, np.float32), rate, format="WAV")
    return buf.getvalue()


def test_tekken_is_the_shipped_vocabulary_with_voxtral_control_tokens(tiny_stt_dir):
    from mistral_common.tokens.tokenizers.base import SpecialTokens
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    ours = Tekkenizer.from_file(tiny_stt_dir / "tekken.json")
    with resources.as_file(resources.files("mistral_common") / "data/tekken_240911.json") as shipped_path:
        shipped = Tekkenizer.from_file(shipped_path)
    text = "Hello world, ça va? 123"
    ids = ours.encode(text, bos=False, eos=False)
    assert ids == shipped.encode(text, bos=False, eos=False) and min(ids) >= 1000
    assert ours.decode(ids) == text
    assert ours.decode(ours.encode("Hello world", bos=True, eos=True)) == "Hello world"
    assert (ours.n_words, ours.num_special_tokens) == (131072, 1000)
    control_ids = {
        SpecialTokens.bos: 1, SpecialTokens.eos: 2, SpecialTokens.begin_inst: 3, SpecialTokens.end_inst: 4,
        SpecialTokens.pad: 11, SpecialTokens.audio: 24, SpecialTokens.begin_audio: 25,
        SpecialTokens.streaming_pad: 32, SpecialTokens.streaming_word: 33, SpecialTokens.transcribe: 34,
        SpecialTokens.audio_to_text: 35, SpecialTokens.text_to_audio: 36,
    }  # fmt: skip
    for token, expected in control_ids.items():
        assert ours.get_special_token(token.value) == expected, token
    assert ours.id_to_piece(999) == "<SPECIAL_999>"


def test_mistral_common_encodes_a_streaming_transcription_request(tiny_stt_dir):
    from mistral_common.protocol.transcription.request import TranscriptionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    tokenizer = MistralTokenizer.from_file(tiny_stt_dir / "tekken.json")
    audio = tokenizer.instruct_tokenizer.audio_encoder.audio_config
    assert (audio.sampling_rate, audio.frame_rate, audio.transcription_delay_ms) == (16000, 12.5, 480)
    assert (audio.get_num_delay_tokens(), audio.n_left_pad_tokens, audio.n_right_pad_tokens()) == (6, 32, 17)
    assert (audio.encoding_config.num_mel_bins, audio.encoding_config.hop_length) == (128, 160)

    # [BOS] + [STREAMING_PAD] * (32 left-pad + 6 delay tokens).
    prompt = [1] + [32] * 38
    offline = tokenizer.encode_transcription(TranscriptionRequest(audio=_wav_bytes(16000, 16000), streaming="offline"))
    assert offline.tokens == prompt
    # 32 tokens of left pad, then the audio padded to 80 ms, then 17 tokens of right pad.
    assert [a.audio_array.size for a in offline.audios] == [32 * 1280 + 16000 + 640 + 17 * 1280]
    online = tokenizer.encode_transcription(TranscriptionRequest(audio="", streaming="online"))
    assert online.tokens == prompt


def test_mistral_common_encodes_a_speech_request_with_a_preset_voice(tiny_tts_dir):
    from mistral_common.protocol.speech.request import SpeechRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    tokenizer = MistralTokenizer.from_file(tiny_tts_dir / "tekken.json")
    audio = tokenizer.instruct_tokenizer.audio_encoder.audio_config
    params = json.loads((tiny_tts_dir / "params.json").read_text())
    assert (audio.sampling_rate, audio.frame_rate) == (24000, 12.5)
    assert list(audio.voice_num_audio_tokens) == list(params["multimodal"]["audio_tokenizer_args"]["voice"])

    n = audio.voice_num_audio_tokens["casual_male"]
    text = tokenizer.instruct_tokenizer.tokenizer.encode("Hello world", bos=False, eos=False)
    tokens = tokenizer.encode_speech_request(SpeechRequest(input="Hello world", voice="casual_male")).tokens
    # [BOS] [BEGIN_AUDIO] [AUDIO] * N [NEXT_AUDIO_TEXT] text [REPEAT_AUDIO_TEXT] [BEGIN_AUDIO]
    assert tokens == [1, 25] + [24] * n + [36] + text + [35, 25]


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "seed", "match"),
    [
        ("asr", "tiny", 0, r"'asr'.*'stt', 'tts'"),
        ("stt", "small", 0, r"'small'.*'tiny', 'full'"),
        ("tts", "tiny", -1, r"seed.*-1"),
        ("stt", "tiny", 1.5, r"seed.*1\.5"),
    ],
)
def test_bad_arguments_are_refused_before_writing(model, size, seed, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        make_checkpoint(model, size, tmp_path / "out", seed=seed)
    assert not (tmp_path / "out").exists()


def test_refuses_a_directory_that_holds_a_checkpoint(tiny_stt_dir):
    before = (tiny_stt_dir / "consolidated.safetensors").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="params.json"):
        make_checkpoint("stt", "tiny", tiny_stt_dir)
    assert (tiny_stt_dir / "consolidated.safetensors").stat().st_mtime_ns == before
