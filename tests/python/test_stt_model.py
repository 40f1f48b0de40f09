"""The eager Voxtral Realtime model (export/models/stt.py) against HF transformers'
`VoxtralRealtimeForConditionalGeneration` converted from the same tiny Mistral-format
checkpoint (stt_reference.py), fp32; its streaming invariances; loader errors.

Input: the espeak clip padded per the reference stream schedule (mistral_common's offline
transcription request: 32 tokens of left pad, right pad to 80 ms + 17 tokens), as log-mel
from HF's `VoxtralRealtimeFeatureExtractor`: 146 audio tokens = 1168 mel frames.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import torch  # noqa: E402

from stt_reference import hf_state_dict, load_hf_model  # noqa: E402

from voxtral_native.export.checkpoint import CheckpointError, load_stt  # noqa: E402
from voxtral_native.export.config import ParamsError  # noqa: E402

DATA = Path(__file__).parents[1] / "data"
PROMPT = [1] + [32] * 38  # [BOS] + [STREAMING_PAD] * (32 left-pad + 6 delay tokens)
DELAY = 6
MEL_PER_TOKEN = 8  # 80 ms of 10 ms mel frames

# fp32 parity bounds. Random tiny logits have std ~8, so 1e-4 absolute is ~1e-5 relative.
PARITY_ATOL = 1e-4
STREAM_ATOL = 1e-5  # chunked vs whole-clip encode: the same math, only the call split differs


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def t(*values, dtype=torch.int64):
    return torch.tensor(values, dtype=dtype)


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def tokenizer(tiny_stt_dir):
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return MistralTokenizer.from_file(tiny_stt_dir / "tekken.json")


@pytest.fixture(scope="module")
def request_audio(tokenizer):
    """(prompt tokens, padded 16 kHz samples) of the offline transcription request."""
    from mistral_common.protocol.transcription.request import TranscriptionRequest

    wav = (DATA / "speech_en_espeak.wav").read_bytes()
    req = tokenizer.encode_transcription(TranscriptionRequest(audio=wav, streaming="offline"))
    assert req.tokens == PROMPT
    (audio,) = req.audios
    return req.tokens, audio.audio_array


def log_mel(samples):
    from transformers import VoxtralRealtimeFeatureExtractor

    return VoxtralRealtimeFeatureExtractor()(samples, sampling_rate=16000, return_tensors="pt").input_features


@pytest.fixture(scope="module")
def mel(request_audio):
    mel = log_mel(request_audio[1])  # [1, 128, 8n]
    assert mel.shape[1] == 128 and mel.shape[2] % MEL_PER_TOKEN == 0
    return mel


@pytest.fixture(scope="module")
def n_tokens(mel):
    return mel.shape[2] // MEL_PER_TOKEN


@pytest.fixture(scope="module")
def input_ids(tokenizer, request_audio, n_tokens):
    """The streaming prompt, then text ids (as if fed back), one per audio token."""
    sentence = "the quick brown fox jumps over the lazy dog "
    text = tokenizer.instruct_tokenizer.tokenizer.encode(sentence * 30, bos=False, eos=False)
    ids = request_audio[0] + text[: n_tokens - len(request_audio[0])]
    assert len(ids) == n_tokens
    return torch.tensor([ids])


@pytest.fixture(scope="module")
def hf(tiny_stt_dir):
    return load_hf_model(tiny_stt_dir)


def ours(ckpt, max_encoder_tokens=160, max_decoder_tokens=160):
    """A fresh model (its caches are state): enough room for the whole clip in one call."""
    return load_stt(ckpt, max_encoder_tokens=max_encoder_tokens, max_decoder_tokens=max_decoder_tokens)


@pytest.fixture(scope="module")
def whole_clip_embeds(tiny_stt_dir, mel):
    return ours(tiny_stt_dir).encode(mel, t(0))


# --- parity with HF transformers --------------------------------------------------------


def test_encoder_output_matches_hf(hf, tiny_stt_dir, mel):
    ref = hf.model.audio_tower(input_features=mel).last_hidden_state  # [1, F/2, enc_dim]
    out = ours(tiny_stt_dir).mm_streams_embeddings.embedding_module.whisper_encoder(mel, t(0))
    err = max_err(out, ref)
    assert err < PARITY_ATOL, f"encoder: max abs error {err:.3g} (output max {ref.abs().max().item():.3g})"


def test_audio_embeddings_match_hf(hf, mel, whole_clip_embeds, n_tokens):
    ref = hf.model.get_audio_features(input_features=mel).pooler_output  # [1, n, dim]
    assert ref.shape == (1, n_tokens, hf.config.text_config.hidden_size)
    err = max_err(whole_clip_embeds, ref)
    assert err < PARITY_ATOL, f"audio embeddings: max abs error {err:.3g}"


@pytest.mark.parametrize("delay", [DELAY, 12])
def test_decoder_logits_match_hf(hf, tiny_stt_dir, mel, input_ids, whole_clip_embeds, delay):
    ref = hf(input_ids=input_ids, input_features=mel, num_delay_tokens=delay).logits  # [1, n, vocab]
    out = ours(tiny_stt_dir).decode(whole_clip_embeds, input_ids, t(0), t(float(delay), dtype=torch.float32))
    err = max_err(out, ref)
    assert err < PARITY_ATOL, f"logits: max abs error {err:.3g} (logit std {ref.std().item():.3g})"


def test_rotary_layout_is_checked(hf, tiny_stt_dir, mel):
    """Guards the parity test: loading q/k without the interleaved -> half-split permutation
    gives a clearly different encoder, so the permutation is what makes the outputs agree."""
    from safetensors.torch import load_file
    from transformers import VoxtralRealtimeForConditionalGeneration

    params = json.loads((tiny_stt_dir / "params.json").read_text())
    tensors = {k: v.float() for k, v in load_file(tiny_stt_dir / "consolidated.safetensors").items()}
    unpermuted = hf_state_dict(tensors, params)
    prefix = "mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers."
    for i in range(params["multimodal"]["whisper_model_args"]["encoder_args"]["n_layers"]):
        for w in ("q", "k"):
            unpermuted[f"model.audio_tower.layers.{i}.self_attn.{w}_proj.weight"] = tensors[
                f"{prefix}{i}.attention.w{w}.weight"
            ]
        unpermuted[f"model.audio_tower.layers.{i}.self_attn.q_proj.bias"] = tensors[f"{prefix}{i}.attention.wq.bias"]
    wrong = VoxtralRealtimeForConditionalGeneration(hf.config)
    wrong.load_state_dict(unpermuted, strict=True)
    wrong.eval()
    good = hf.model.audio_tower(input_features=mel).last_hidden_state
    bad = wrong.model.audio_tower(input_features=mel).last_hidden_state
    assert max_err(good, bad) > 1e-2


# --- sliding window (750 encoder frames = 15 s) -----------------------------------------


@pytest.fixture(scope="module")
def long_mel():
    """The clip tiled to 20.48 s: 256 tokens, 2048 mel frames, 1024 encoder frames."""
    import soundfile

    samples, rate = soundfile.read(DATA / "speech_en_espeak.wav", dtype="float32")
    assert rate == 16000
    n = 256 * 1280
    tiled = torch.from_numpy(samples).repeat(n // len(samples) + 1)[:n].numpy()
    mel = log_mel(tiled)
    assert mel.shape == (1, 128, 2048)
    return mel


@pytest.fixture(scope="module")
def long_hf_frames(hf, long_mel):
    return hf.model.audio_tower(input_features=long_mel).last_hidden_state  # [1, 1024, enc_dim]


def test_hf_applies_the_encoder_sliding_window(tiny_stt_dir, long_mel, long_hf_frames):
    """HF's encoder masks keys older than 750 frames: without the window it agrees up to
    frame 749 and differs from frame 750 on (where key 0 leaves the window)."""
    unwindowed = load_hf_model(tiny_stt_dir, encoder_sliding_window=1 << 20)
    full = unwindowed.model.audio_tower(input_features=long_mel).last_hidden_state
    assert max_err(full[:, :750], long_hf_frames[:, :750]) < 1e-5
    assert (full[:, 750:] - long_hf_frames[:, 750:]).abs().amax(dim=-1).min() > 1e-4  # every later frame


def test_long_encoder_matches_hf_past_the_window(tiny_stt_dir, long_mel, long_hf_frames):
    whole = ours(tiny_stt_dir, max_encoder_tokens=256).mm_streams_embeddings.embedding_module.whisper_encoder
    err = max_err(whole(long_mel, t(0)), long_hf_frames)
    assert err < PARITY_ATOL, f"long encoder, one call: max abs error {err:.3g}"

    # 64-frame calls through a ring of 750 + 63 slots: it wraps around (1024 frames).
    chunked = ours(tiny_stt_dir, max_encoder_tokens=16).mm_streams_embeddings.embedding_module.whisper_encoder
    frames = [chunked(long_mel[:, :, s : s + 128], t(s // 2)) for s in range(0, long_mel.shape[2], 128)]
    err = max_err(torch.cat(frames, dim=1), long_hf_frames)
    assert err < PARITY_ATOL, f"long encoder, 64-frame calls: max abs error {err:.3g}"


# --- streaming invariances of our model -------------------------------------------------


def _token_chunks(n_tokens, sizes):
    """Consecutive chunk sizes (in audio tokens) cycling through `sizes`, summing to n_tokens."""
    out, i = [], 0
    while sum(out) < n_tokens:
        out.append(min(sizes[i % len(sizes)], n_tokens - sum(out)))
        i += 1
    return out


@pytest.mark.parametrize("sizes", [[1], [3, 1, 7, 16, 2, 40, 5]], ids=["8-mel-frames", "mixed"])
def test_chunked_encode_equals_whole_clip(tiny_stt_dir, mel, n_tokens, whole_clip_embeds, sizes):
    model = ours(tiny_stt_dir)
    # A stream before this one: start_token 0 must forget it.
    model.encode(mel[:, :, : 24 * MEL_PER_TOKEN].flip(-1), t(0))
    embeds, start = [], 0
    for size in _token_chunks(n_tokens, sizes):
        embeds.append(model.encode(mel[:, :, start * MEL_PER_TOKEN : (start + size) * MEL_PER_TOKEN], t(start)))
        start += size
    err = max_err(torch.cat(embeds, dim=1), whole_clip_embeds)
    assert err < STREAM_ATOL, f"chunked encode ({sizes}): max abs error {err:.3g}"


@pytest.mark.parametrize("schedule", ["one-token", "prompt-then-steps"])
def test_incremental_decode_equals_prefill(tiny_stt_dir, input_ids, whole_clip_embeds, n_tokens, schedule):
    delay = t(float(DELAY), dtype=torch.float32)
    prefill = ours(tiny_stt_dir).decode(whole_clip_embeds, input_ids, t(0), delay)
    model = ours(tiny_stt_dir)
    sizes = [1] * n_tokens if schedule == "one-token" else [len(PROMPT)] + [1] * (n_tokens - len(PROMPT))
    logits, start = [], 0
    for size in sizes:
        end = start + size
        logits.append(model.decode(whole_clip_embeds[:, start:end], input_ids[:, start:end], t(start), delay))
        start = end
    err = max_err(torch.cat(logits, dim=1), prefill)
    assert err < PARITY_ATOL, f"{schedule} decode vs prefill: max abs error {err:.3g}"


# --- loader errors ----------------------------------------------------------------------


@pytest.fixture
def broken_dir(tiny_stt_dir, tmp_path):
    """A copy of the tiny checkpoint to break."""
    return Path(shutil.copytree(tiny_stt_dir, tmp_path / "ckpt"))


@pytest.mark.parametrize("name", ["params.json", "consolidated.safetensors", "tekken.json"])
def test_missing_file(broken_dir, name):
    (broken_dir / name).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(broken_dir))}.*missing {name}"):
        load_stt(broken_dir)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_stt(tmp_path / "nowhere")


def _edit_params(ckpt: Path, edit) -> Path:
    path = ckpt / "params.json"
    params = json.loads(path.read_text())
    edit(params)
    path.write_text(json.dumps(params))
    return path


def _encoder_args(p):
    return p["multimodal"]["whisper_model_args"]["encoder_args"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p.pop("n_heads"), r"missing field 'n_heads'"),
        (lambda p: _encoder_args(p).pop("sliding_window"),
         r"missing field 'multimodal\.whisper_model_args\.encoder_args\.sliding_window'"),
        (lambda p: p["multimodal"]["whisper_model_args"].pop("downsample_args"),
         r"missing field 'multimodal\.whisper_model_args\.downsample_args'"),
        (lambda p: p.update(dim="64"), r"field 'dim' must be an integer, got '64'"),
        (lambda p: p.update(n_layers=2.0), r"field 'n_layers' must be an integer, got 2\.0"),
        (lambda p: p.update(vocab_size=True), r"field 'vocab_size' must be an integer, got True"),
        (lambda p: p.update(norm_eps="1e-5"), r"field 'norm_eps' must be a number, got '1e-5'"),
        (lambda p: _encoder_args(p)["audio_encoding_args"].update(num_mel_bins=None),
         r"field 'multimodal\.whisper_model_args\.encoder_args\.audio_encoding_args\.num_mel_bins' "
         r"must be an integer, got None"),
        (lambda p: p.update(multimodal=[]), r"field 'multimodal' must be an object, got \[\]"),
        (lambda p: _encoder_args(p).update(n_heads=-4),
         r"'multimodal\.whisper_model_args\.encoder_args\.n_heads' must be positive, got -4"),
    ],
    ids=["missing-top", "missing-nested", "missing-object", "str-for-int", "float-for-int", "bool-for-int",
         "str-for-float", "null", "list-for-object", "not-positive-nested"],
)  # fmt: skip
def test_bad_params(broken_dir, edit, match):
    path = _edit_params(broken_dir, edit)
    with pytest.raises(ParamsError, match=match) as info:
        load_stt(broken_dir)
    assert str(path) in str(info.value)


def test_not_positive_top_level_field_is_named_plainly(broken_dir):
    _edit_params(broken_dir, lambda p: p.update(dim=0))
    with pytest.raises(ParamsError, match=r"field 'dim' must be positive, got 0"):
        load_stt(broken_dir)


def test_params_not_json(broken_dir):
    (broken_dir / "params.json").write_text("{ not json")
    with pytest.raises(ParamsError, match=rf"{re.escape(str(broken_dir / 'params.json'))}: not valid JSON"):
        load_stt(broken_dir)


def _edit_weights(ckpt: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    path = ckpt / "consolidated.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)
    return path


WK = "layers.1.attention.wk.weight"
ENC_BIAS = "mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers.0.attention.wq.bias"


def _resize(name, rows):
    def edit(tensors):
        tensors[name] = torch.zeros(rows, *tensors[name].shape[1:], dtype=tensors[name].dtype)

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda sd: sd.pop(WK), rf"missing 1 tensor\(s\): {WK}"),
        (lambda sd: sd.pop(ENC_BIAS), rf"missing 1 tensor\(s\): {ENC_BIAS}"),
        (lambda sd: sd.update({"output.weight": sd["norm.weight"].clone()}),
         r"unexpected 1 tensor\(s\): output\.weight"),
        (_resize(WK, 48), rf"tensor '{WK}' has shape \[48, 64\], params\.json implies \[32, 64\]"),
        (_resize(ENC_BIAS, 32), rf"tensor '{ENC_BIAS}' has shape \[32\], params\.json implies \[64\]"),
    ],
    ids=["missing", "missing-bias", "extra", "wrong-shape", "wrong-shape-bias"],
)  # fmt: skip
def test_bad_weights(broken_dir, edit, match):
    path = _edit_weights(broken_dir, edit)
    with pytest.raises(CheckpointError, match=match) as info:
        load_stt(broken_dir)
    assert str(path) in str(info.value)
