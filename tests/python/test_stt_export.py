"""The exported speech-to-text program (run by ExecuTorch's runtime with libvoxtral's
kernels) against the eager model, chunk by chunk and step by step; quantized exports;
ring caches past their windows; metadata; the export CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import torch  # noqa: E402

import voxtral_native  # noqa: E402
from conftest import STT_VARIANTS, made_once  # noqa: E402
from stt_reference import reference_request  # noqa: E402
from voxtral_native.export.checkpoint import load_stt  # noqa: E402
from voxtral_native.export.export_stt import DTYPES, SttExportOptions, _Decode, _Encode, export_stt  # noqa: E402
from voxtral_native.artifact import FORMAT_VERSION, read_artifact  # noqa: E402
from voxtral_native.export.quantize import EMBEDDING_SCHEMES, QuantScheme, quantizer  # noqa: E402

voxtral_native.native()  # registers voxtral:: kernels with the ExecuTorch runtime

DATA = Path(__file__).parents[1] / "data"
MEL_PER_TOKEN = 8
DELAY = torch.tensor([6.0])  # 480 ms


@pytest.fixture(scope="module", autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def load_methods(pte: Path):
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(pte))
    return program.load_method("encode"), program.load_method("decode")


@pytest.fixture(scope="module")
def fp32_artifact(tiny_stt_artifact):
    return tiny_stt_artifact


@pytest.fixture(scope="module")
def clip(tiny_stt_dir):
    """Prompt ids and mel of the flite clip (5.2 s), padded per the stream schedule."""
    return reference_request(tiny_stt_dir / "tekken.json", DATA / "speech_en_flite.wav")


def test_artifact_directory(fp32_artifact, tiny_stt_dir):
    assert sorted(p.name for p in fp32_artifact.iterdir()) == ["manifest.json", "model.pte", "tekken.json"]
    assert (fp32_artifact / "tekken.json").read_bytes() == (tiny_stt_dir / "tekken.json").read_bytes()
    manifest = json.loads((fp32_artifact / "manifest.json").read_text())
    assert manifest["program_bytes"] == (fp32_artifact / "model.pte").stat().st_size
    assert manifest["quantization"] == {"decoder": None, "encoder": None, "embedding": None}
    artifact = read_artifact(fp32_artifact, "stt")  # the index both runtimes read
    assert (artifact.format_version, artifact.kind, artifact.backend) == (FORMAT_VERSION, "stt", "xnnpack")
    assert artifact.files == {"program": "model.pte", "tokenizer": "tekken.json"}
    assert manifest["options"]["dtype"] == "fp32"


def test_runtime_reads_every_constant_the_export_writes(fp32_artifact):
    """One table on each side: the names the export writes are the names libvoxtral's
    metadata table reads (and hands the bindings), with the same values."""
    written = json.loads((fp32_artifact / "manifest.json").read_text())["metadata"]
    read = voxtral_native.native().SttRunner.load(str(fp32_artifact)).metadata
    assert list(read) == list(written)  # the same names, in the same order
    assert read == written


def test_metadata_constant_methods(fp32_artifact, tiny_stt_dir):
    program = voxtral_native.native().Program.load(str(fp32_artifact / "model.pte"))
    params = json.loads((tiny_stt_dir / "params.json").read_text())
    assert program.constant_int("format_version") == FORMAT_VERSION
    expected = {
        "sample_rate": 16000, "hop_length": 160, "window_size": 400, "num_mel_bins": 128,
        "mel_frames_per_token": 8, "samples_per_token": 1280, "encoder_frames_per_token": 4,
        "default_delay_ms": 480, "max_delay_ms": 1200, "long_delay_ms": 2400, "n_left_pad_tokens": 32,
        "n_right_pad_tokens": 11, "encoder_window": 750,
        "decoder_window": params["sliding_window"], "dim": params["dim"], "vocab_size": 131072,
        "max_encoder_tokens": 32, "max_decoder_tokens": 64, "lm_input_is_bf16": 0,
    }  # fmt: skip
    assert {k: program.constant_int(k) for k in expected} == expected
    assert program.constant_double("global_log_mel_max") == 1.5
    assert json.loads((fp32_artifact / "manifest.json").read_text())["metadata"]["format_version"] == FORMAT_VERSION


def test_state_is_planned_once(fp32_artifact, tiny_stt_dir):
    """Each method's memory plan holds its state (ring caches, conv context) once, plus
    activations: not a second copy for the graph output that returns the updated state
    (export_stt._memory_planning_pass). Every session allocates and zero-fills this plan."""
    program = voxtral_native.native().Program.load(str(fp32_artifact / "model.pte"))
    model = load_stt(tiny_stt_dir, max_encoder_tokens=32, max_decoder_tokens=64)  # the artifact's bounds
    state = {
        "encode": sum(b.numel() * b.element_size() for b in model.mm_streams_embeddings.buffers()),
        "decode": sum(b.numel() * b.element_size() for b in model.layers.buffers()),
    }
    # measured 2026-12-01: 0.30 MB, 1.05 MB; decode then gained the logits of every position
    # (the speculative check: [1, 64, 131072] float32 = 33.6 MB at the artifact's bound)
    logits = 64 * model.config.vocab_size * 4
    activations = {"encode": 0.6e6, "decode": 1.6e6 + logits}
    for method in state:
        planned = program.planned_memory_bytes(method)
        assert state[method] < planned < state[method] + activations[method], (method, planned, state[method])


def greedy_stream(encode, decode, mel: torch.Tensor, prompt: list[int], chunking: list[int]):
    """The reference schedule through `encode(mel, start)` / `decode(embeds, ids, pos)`:
    audio embeddings chunk by chunk, the prompt prefilled, then one step per audio token
    with the previous token fed back. Returns (audio embeddings, per-step logits, tokens)."""
    n_tokens = mel.shape[2] // MEL_PER_TOKEN
    embeds, start = [], 0
    for size in chunking * n_tokens:
        size = min(size, n_tokens - start)
        if size == 0:
            break
        chunk = mel[:, :, start * MEL_PER_TOKEN : (start + size) * MEL_PER_TOKEN].contiguous()
        embeds.append(encode(chunk, torch.tensor([start])))
        start += size
    embeds = torch.cat(embeds, dim=1)
    p = len(prompt)
    logits, token = decode(embeds[:, :p].contiguous(), torch.tensor([prompt]), torch.tensor([0]))
    steps, tokens = [logits], [int(token.reshape(-1)[-1])]  # the programs' last token of K
    for pos in range(p, n_tokens):
        logits, token = decode(embeds[:, pos : pos + 1].contiguous(), torch.tensor([[tokens[-1]]]), torch.tensor([pos]))
        steps.append(logits)
        tokens.append(int(token.reshape(-1)[-1]))
    return embeds, torch.cat(steps), tokens


def eager_stream(model, mel, prompt, chunking):
    def decode(embeds, ids, pos):
        logits = model.decode(embeds, ids, pos, DELAY, last_only=True)[:, 0]
        return logits, logits.argmax(-1)

    return greedy_stream(model.encode, decode, mel, prompt, chunking)


def program_stream(pte: Path, mel, prompt, chunking):
    encode, decode = load_methods(pte)
    return greedy_stream(
        lambda m, s: encode.execute([m, s])[0],
        lambda e, i, p: tuple(decode.execute([e, i, p, DELAY])),
        mel, prompt, chunking,
    )  # fmt: skip


def test_fp32_program_matches_eager_chunk_by_chunk_and_step_by_step(fp32_artifact, tiny_stt_dir, clip):
    prompt, mel = clip
    model = load_stt(tiny_stt_dir, max_encoder_tokens=32)
    ref_embeds, ref_logits, ref_tokens = eager_stream(model, mel, prompt, chunking=[32])
    for chunking in ([1], [3, 1, 8, 32, 5]):  # one 80 ms token per call, and mixed sizes
        embeds, logits, tokens = program_stream(fp32_artifact / "model.pte", mel, prompt, chunking)
        assert (embeds - ref_embeds).abs().max() < 1e-4
        assert (logits - ref_logits).abs().max() < 1e-4  # logits of the tiny model have std ~8
        assert tokens == ref_tokens
    assert len(ref_tokens) == mel.shape[2] // MEL_PER_TOKEN - len(prompt) + 1


# The quantized exports (conftest.STT_VARIANTS) cover every supported scheme.
QUANT_EXPORTS = [name for name, options in STT_VARIANTS.items() if "quant" in options]
# Bounds on the relative L2 error against the fp32 eager model on the flite clip. Measured
# on the tiny random model (2026-11-22): 8da8w encoder embeds 0.027; 8da4w encoder embeds
# 0.29; logits 0.69 with an 8da4w decoder + 4w table, 0.17 with 8da8w + 8w. int4 at group
# 32 on 32/64-wide random layers loses far more than on trained weights; the bounds keep
# ~1.5x headroom. The program-vs-quantized-eager bounds below are the tight check.
# Weight-only (2026-12-01): 4w:32 encoder embeds 0.29, 8w decoder + 8w table logits 0.17.
# fp16 with 4w:32 encoder, 8da4w decoder, 4w table: vs fp32 0.29, 0.69 (int4 dominates);
# vs quantized eager fp16 0.0008, 0.0135.
# Weight-only programs compute the same dequantized products as eager (no activation
# rounding): they must match quantized eager to float summation order.
QUANT_BOUNDS = {
    "enc8da8w-dec8da4w-emb4w": dict(embeds=0.05, logits=1.0, program=(0.03, 0.05)),
    "enc8da4w-dec8da8w-emb8w": dict(embeds=0.45, logits=0.26, program=(0.03, 0.05)),
    "enc4w-dec8w-emb8w": dict(embeds=0.45, logits=0.26, program=(1e-4, 1e-4)),
    "fp16-enc4w-dec8da4w-emb4w": dict(embeds=0.45, logits=1.0, program=(0.01, 0.05)),
}


@pytest.mark.parametrize("name", QUANT_EXPORTS)
def test_quantized_programs_run_and_stay_close(name, tiny_stt_dir, tiny_stt_variant, clip):
    options = STT_VARIANTS[name]
    prompt, mel = clip
    embeds, logits, tokens = program_stream(tiny_stt_variant(name) / "model.pte", mel, prompt, chunking=[4])

    fp32 = load_stt(tiny_stt_dir, max_encoder_tokens=32)
    fp32_embeds, fp32_logits, _ = eager_stream(fp32, mel, prompt, chunking=[32])
    # The same quantized weights in eager PyTorch (in the export's dtype): the program must
    # implement them faithfully.
    hook = quantizer(
        QuantScheme.parse(options["encoder_quant"]), QuantScheme.parse(options["quant"]),
        QuantScheme.parse(options["embedding_quant"], EMBEDDING_SCHEMES),
    )  # fmt: skip
    dtype = DTYPES[options.get("dtype", "fp32")]
    quant = load_stt(tiny_stt_dir, dtype=dtype, max_encoder_tokens=32, on_module_loaded=hook)
    encode, decode = _Encode(quant, dtype), _Decode(quant, dtype)
    q_embeds, q_logits, _ = greedy_stream(encode, lambda e, i, p: decode(e, i, p, DELAY), mel, prompt, [32])

    print(f"{name}: vs fp32 eager: embeds {rel_err(embeds, fp32_embeds):.4f}, logits {rel_err(logits, fp32_logits):.4f};"
          f" vs quantized eager: embeds {rel_err(embeds, q_embeds):.4f}, logits {rel_err(logits, q_logits):.4f}")
    # The program implements the quantized model (the same int weights) faithfully; dynamic
    # activation quantization rounds slightly differently in XNNPACK.
    bound_embeds, bound_logits = QUANT_BOUNDS[name]["program"]
    assert rel_err(embeds, q_embeds) < bound_embeds
    assert rel_err(logits, q_logits) < bound_logits
    assert rel_err(embeds, fp32_embeds) < QUANT_BOUNDS[name]["embeds"]
    assert rel_err(logits, fp32_logits) < QUANT_BOUNDS[name]["logits"]
    assert len(tokens) == len(logits)


# Measured on the tiny random model (2026-12-01), relative L2 errors (embeds, logits):
# bf16 program vs eager bf16 0.035, 0.019, vs fp32 0.034, 0.018; fp16 0.0011, 0.0010 and
# 0.0011, 0.0009; greedy tokens equal to eager in the same dtype (76/76) for both. On a CI
# machine fp16 measured 0.0052: XNNPACK runs fp16 GEMMs with fp16 arithmetic where the CPU has
# it (AVX512-FP16, Arm fp16) and through float32 elsewhere, so the error depends on the CPU.
# The bounds follow each format's precision instead: bf16 (8 mantissa bits) ~0.06, fp16
# (11 bits, 8x finer) 0.06 / 8 ~ 0.008, about 1.5x the worst measured.
HALF_BOUNDS = {
    "bf16": dict(same_dtype=(0.06, 0.04), fp32=(0.06, 0.04)),
    "fp16": dict(same_dtype=(0.008, 0.008), fp32=(0.008, 0.008)),
}


@pytest.mark.parametrize("dtype", list(HALF_BOUNDS))
def test_half_precision_programs_match_eager_in_the_same_dtype(dtype, tiny_stt_dir, tiny_stt_variant, clip,
                                                              fp32_artifact):
    """Compute in bf16 / fp16 (weights, activations, KV caches; the ring attention kernel
    widens half rows to float32), float32 at the program's edges."""
    assert STT_VARIANTS[dtype] == {"dtype": dtype}
    half_artifact = tiny_stt_variant(dtype)
    native = voxtral_native.native()
    for method in ("encode", "decode"):  # half caches and activations: about half the memory
        fp32_bytes = native.Program.load(str(fp32_artifact / "model.pte")).planned_memory_bytes(method)
        half_bytes = native.Program.load(str(half_artifact / "model.pte")).planned_memory_bytes(method)
        assert 0.4 < half_bytes / fp32_bytes < 0.6, (method, half_bytes, fp32_bytes)
    prompt, mel = clip
    embeds, logits, tokens = program_stream(half_artifact / "model.pte", mel, prompt, chunking=[1, 3])
    assert embeds.dtype == logits.dtype == torch.float32

    half = load_stt(tiny_stt_dir, dtype=DTYPES[dtype], max_encoder_tokens=32)
    encode, decode = _Encode(half, DTYPES[dtype]), _Decode(half, DTYPES[dtype])
    h_embeds, h_logits, h_tokens = greedy_stream(encode, lambda e, i, p: decode(e, i, p, DELAY), mel, prompt, [32])
    fp32_embeds, fp32_logits, _ = eager_stream(load_stt(tiny_stt_dir, max_encoder_tokens=32), mel, prompt, [32])
    print(f"{dtype}: vs eager {dtype}: embeds {rel_err(embeds, h_embeds):.4f}, logits {rel_err(logits, h_logits):.4f}; "
          f"vs fp32: embeds {rel_err(embeds, fp32_embeds):.4f}, logits {rel_err(logits, fp32_logits):.4f}; "
          f"tokens equal to eager {dtype}: {sum(a == b for a, b in zip(tokens, h_tokens))}/{len(tokens)}")
    bounds = HALF_BOUNDS[dtype]
    assert rel_err(embeds, h_embeds) < bounds["same_dtype"][0]
    assert rel_err(logits, h_logits) < bounds["same_dtype"][1]
    assert rel_err(embeds, fp32_embeds) < bounds["fp32"][0]
    assert rel_err(logits, fp32_logits) < bounds["fp32"][1]


@pytest.fixture(scope="module")
def small_window_checkpoint(tiny_stt_dir, tmp_path_factory, worker_id):
    """The tiny checkpoint with windows small enough to wrap the rings many times."""

    def make(out: Path) -> None:
        for f in tiny_stt_dir.iterdir():
            if f.is_file():
                shutil.copy(f, out / f.name)
        params = json.loads((out / "params.json").read_text())
        params["sliding_window"] = 12
        params["multimodal"]["whisper_model_args"]["encoder_args"]["sliding_window"] = 20
        (out / "params.json").write_text(json.dumps(params))

    return made_once(tmp_path_factory, worker_id, "stt-small-window", make)


def test_ring_caches_past_their_windows_match_unwrapped_attention(small_window_checkpoint, clip, tmp_path):
    """Program rings of window + max_tokens - 1 slots wrap many times over the clip; the
    eager reference holds every position (no wrap) and masks to the same windows."""
    options = SttExportOptions(max_encoder_tokens=2, max_decoder_tokens=40)
    export_stt(small_window_checkpoint, tmp_path, options, progress=lambda _: None)
    prompt, mel = clip
    n_tokens = mel.shape[2] // MEL_PER_TOKEN
    embeds, logits, tokens = program_stream(tmp_path / "model.pte", mel, prompt, chunking=[1, 2])

    unwrapped = load_stt(small_window_checkpoint, max_encoder_tokens=n_tokens, max_decoder_tokens=n_tokens)
    assert unwrapped.layers[0].attention.k_cache.shape[2] >= n_tokens  # never wraps
    ref_embeds, ref_logits, ref_tokens = eager_stream(unwrapped, mel, prompt, chunking=[n_tokens])
    assert n_tokens * 4 > 5 * 20 and n_tokens > 5 * 12  # both windows are passed several times
    assert (embeds - ref_embeds).abs().max() < 1e-4
    assert (logits - ref_logits).abs().max() < 1e-4
    assert tokens == ref_tokens


@pytest.mark.parametrize("name", ["8da4w", "8da8w", "4w", "8w:64"])
def test_tall_linears_quantized_in_row_blocks_equal_the_whole(name, monkeypatch):
    """Large linears are quantized in blocks of rows (bounded HQQ temporaries, early stops per
    block): the weight equals torchao's quantization of the whole matrix, bit for bit, and the
    layer computes the same outputs. A wrong assembly (blocks out of order) would fail."""
    from torch import nn
    from torchao.quantization import quantize_

    from voxtral_native.export import quantize

    monkeypatch.setattr(quantize, "BLOCK_ELEMENTS", 96 * 128)  # 96 rows: 3 blocks and a short last one
    scheme = QuantScheme.parse(name)
    g = torch.Generator().manual_seed(3)
    weight = 0.05 * torch.randn(300, 128, generator=g)
    whole = nn.Sequential(nn.Linear(128, 300, bias=False))
    whole[0].weight.data.copy_(weight)
    quantize_(whole, scheme.torchao_config())
    blocked = nn.Sequential(nn.Linear(128, 300, bias=False))
    blocked[0].weight.data.copy_(weight)
    assert quantize.quantize_module_(blocked, scheme, nn.Linear) == 1
    w, got = whole[0].weight, getattr(blocked[0], "weight", None)
    x = torch.randn(5, 128, generator=g)
    if hasattr(got, "qdata"):  # 8da schemes keep torchao's tensor: compare it field by field
        assert type(got) is type(w)
        for field in w.tensor_data_names:
            assert torch.equal(getattr(got, field), getattr(w, field)), field
        for field in w.tensor_attribute_names:
            assert getattr(got, field) == getattr(w, field), field
        reference = whole
    else:  # weight-only schemes become WeightOnlyLinear (voxtral::linear_wq)
        reference = nn.Sequential(quantize.WeightOnlyLinear.from_torchao(whole[0]))
    assert torch.equal(blocked(x), reference(x))


@pytest.mark.parametrize("name", ["8w", "4w", "4w:64"])
def test_tall_embedding_tables_quantized_in_row_blocks_equal_the_whole(name, monkeypatch):
    """The token table (131072 rows) is quantized in row blocks too: the same tensor, bit for
    bit, as torchao's quantization of the whole table, and the same lookups."""
    from torch import nn
    from torchao.quantization import quantize_

    from voxtral_native.export import quantize

    monkeypatch.setattr(quantize, "BLOCK_ELEMENTS", 96 * 128)
    scheme = QuantScheme.parse(name, EMBEDDING_SCHEMES)
    g = torch.Generator().manual_seed(4)
    weight = 0.05 * torch.randn(300, 128, generator=g)
    whole, blocked = nn.Embedding(300, 128), nn.Embedding(300, 128)
    whole.weight.data.copy_(weight)
    blocked.weight.data.copy_(weight)
    quantize_(nn.Sequential(whole), scheme.torchao_config(), filter_fn=lambda m, _: isinstance(m, nn.Embedding))
    holder = nn.Sequential(blocked)
    assert quantize.quantize_module_(holder, scheme, nn.Embedding) == 1
    w, got = whole.weight, holder[0].weight
    assert type(got) is type(w)
    for field in w.tensor_data_names:
        assert torch.equal(getattr(got, field), getattr(w, field)), field
    for field in w.tensor_attribute_names:
        assert getattr(got, field) == getattr(w, field), field
    ids = torch.tensor([[0, 95, 96, 191, 192, 299]])
    assert torch.equal(holder[0](ids), whole(ids))


def test_export_rejects_bad_options(tiny_stt_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown quantization scheme 'int3'"):
        SttExportOptions(quant="int3")
    with pytest.raises(ValueError, match="group size"):
        SttExportOptions(quant="8da4w:x")
    with pytest.raises(ValueError, match="unknown quantization scheme '8da4w'"):
        SttExportOptions(embedding_quant="8da4w")
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        SttExportOptions(dtype="int8")
    with pytest.raises(ValueError, match="--encoder-quant 8da8w needs float32 or float16 activations"):
        SttExportOptions(dtype="bf16", encoder_quant="8da8w")
    with pytest.raises(ValueError, match="unknown backend"):
        SttExportOptions(backend="tpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_stt(tmp_path / "nope", tmp_path / "out")
    r = subprocess.run([sys.executable, "-m", "voxtral_native", "export", "stt", "--checkpoint", str(tiny_stt_dir),
                        "--out", str(tmp_path / "o"), "--quant", "9w"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown quantization scheme '9w'" in r.stderr and "Traceback" not in r.stderr


def test_weight_only_linears_are_still_broken_upstream(tmp_path):
    """Canary for voxtral::linear_wq: ExecuTorch 1.5.1's XNNPACK lowering of torchao
    weight-only linears ignores the scales, so quantize.py runs them with our own kernel.
    When this starts failing, upstream is fixed: compare XNNPACK's weight-only kernels with
    linear_wq and keep the faster."""
    from executorch.runtime import Runtime
    from torchao.quantization import quantize_

    from voxtral_native.export.export_stt import lower

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96, bias=False)).eval().requires_grad_(False)
    quantize_(model, QuantScheme.parse("8w").torchao_config())
    x = torch.randn(1, 5, 64)
    lower({"forward": torch.export.export(model, (x,))}, {"v": 1}, "xnnpack", tmp_path / "lin.pte")
    out = Runtime.get().load_program(str(tmp_path / "lin.pte")).load_method("forward").execute([x])[0]
    assert rel_err(out, model(x)) > 10  # the int8 values come out unscaled


def test_export_never_reads_its_uninitialized_state(tiny_stt_dir, tiny_stt_artifact, tmp_path, monkeypatch):
    """ExecuTorch exports leave the ring KV caches and conv context uninitialized (their
    pages are never touched: 2.2 GB less peak memory for the full model), which is right
    only if nothing in tracing, lowering or the program reads them. Filled with NaN instead,
    the export must give the same transcript as the fixture's."""
    from voxtral_native.export import checkpoint

    filled = []

    def nan_state(shape, dtype):
        filled.append(shape)
        return torch.full(shape, float("nan"), dtype=dtype)

    monkeypatch.setattr(checkpoint, "_uninitialized", nan_state)
    export_stt(tiny_stt_dir, tmp_path / "nan-state", SttExportOptions(), progress=lambda _: None)
    monkeypatch.undo()
    assert filled, "the loader did not leave the state uninitialized"
    clip = DATA / "speech_en_flite.wav"
    want = voxtral_native.Transcriber(tiny_stt_artifact).transcribe(clip)
    got = voxtral_native.Transcriber(tmp_path / "nan-state").transcribe(clip)
    assert got.tokens == want.tokens and got.text == want.text


class _TwoLinears(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.quantized, self.plain = torch.nn.Linear(64, 96), torch.nn.Linear(96, 32)

    def forward(self, x):
        return self.plain(torch.relu(self.quantized(x)))


def test_lowering_shares_the_weights_and_writes_the_program_unchanged(tmp_path, monkeypatch):
    """lower()'s memory savings change no byte: XNNPACK's preprocess gets copies of the
    partitions' programs that share their tensors (not ExecuTorch's deep copies of every
    weight), leaves those tensors as they were, and the program equals the deep copies' one."""
    import contextlib

    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend

    from voxtral_native.export import export_stt as es
    from voxtral_native.export.quantize import quantize_module_

    def traced(seed: int):
        torch.manual_seed(seed)
        module = _TwoLinears().eval()
        quantize_module_(module, QuantScheme.parse("8da4w:32"), torch.nn.Linear, names={"quantized"})
        return torch.export.export(module, (torch.randn(3, 64),))

    def plain_tensors(program) -> list[torch.Tensor]:  # torchao's quantized weights: their inner tensors
        out = []
        for t in program.state_dict.values():
            names = t.__tensor_flatten__()[0] if hasattr(t, "__tensor_flatten__") else None
            out += [getattr(t, n) for n in names] if names else [t]
        return out

    program = traced(0)
    weights = [t.clone() for t in plain_tensors(program)]

    with es._preprocess_copies_share_weights():
        copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
        assert copied.graph_module is not program.graph_module  # its own graph, passes may rewrite it
        assert all(copied.state_dict[k] is v for k, v in program.state_dict.items())  # the same tensors
    restored = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
    assert all(restored.state_dict[k] is not v for k, v in program.state_dict.items())  # ExecuTorch's own again

    shared_pte, deep_pte = tmp_path / "shared.pte", tmp_path / "deep.pte"
    es.lower({"forward": program}, {}, "xnnpack", shared_pte)
    for now, before in zip(plain_tensors(program), weights, strict=True):  # preprocess wrote into none
        assert torch.equal(now, before)
    monkeypatch.setattr(es, "_preprocess_copies_share_weights", contextlib.nullcontext)
    es.lower({"forward": traced(0)}, {}, "xnnpack", deep_pte)
    assert shared_pte.read_bytes() == deep_pte.read_bytes()


class _SeveralPartitions(torch.nn.Module):
    """A 1-D conv stem and quantized linears with a relu, as the speech-to-text encoder starts;
    then, past an op XNNPACK does not take (cumsum), a cat and a batched matmul (XNNPACK's
    partitioner puts these two in partitions of their own)."""

    def __init__(self):
        super().__init__()
        self.conv, self.linears = torch.nn.Conv1d(8, 64, 3), _TwoLinears()

    def forward(self, x):  # [1, 8, 10] -> [1, 8, 8]
        h = self.linears(torch.nn.functional.gelu(self.conv(x)).transpose(1, 2)).cumsum(1)  # [1, 8, 32]
        c = torch.cat([h, h * 2, h + 1], -1)  # [1, 8, 96]
        return c @ c.transpose(1, 2)


def test_lowering_skips_only_passes_with_nothing_to_rewrite(tmp_path, monkeypatch):
    """XNNPACK's preprocess drops the passes whose ops a partition lacks (batch norm, PReLU,
    upsampling, padding, 1-D conv, mm into linear, SDPA, activation fusion, cat, getitem) and
    keeps the rest; the program is the same byte for byte as with all 17 passes, for a graph
    of partitions with and without the ops that four of the gated passes rewrite."""
    import contextlib

    from executorch.backends.xnnpack import _passes

    from voxtral_native.export import export_stt as es
    from voxtral_native.export.quantize import quantize_module_

    def traced():
        torch.manual_seed(0)
        module = _SeveralPartitions().eval()
        quantize_module_(module, QuantScheme.parse("8da4w:32"), torch.nn.Linear, names={"linears.quantized"})
        return torch.export.export(module, (torch.randn(1, 8, 10),))

    ran: list[tuple[set[str], list[str]]] = []  # (the partition's ops, the passes run on it)
    own_transform = _passes.XNNPACKPassManager.transform

    def recording_transform(self):
        names = (getattr(n.target, "__name__", "") for n in self.exported_program.graph.nodes)
        ran.append(({name.split(".")[1] for name in names if name.startswith("aten.")}, [p.__name__ for p in self.passes]))
        return own_transform(self)

    monkeypatch.setattr(_passes.XNNPACKPassManager, "transform", recording_transform)
    gated_pte, all_pte = tmp_path / "gated.pte", tmp_path / "all.pte"
    es.lower({"forward": traced()}, {}, "xnnpack", gated_pte)
    assert len(ran) >= 2
    # a gated pass runs exactly on the partitions with its ops, and the graph has partitions
    # with and without each of these
    for op, gated in (("convolution", "Conv1dUnsqueezePass"), ("relu", "FuseActivationPass"),
                      ("cat", "DecomposeConcatenate"), ("bmm", "ConvertToLinearPass")):  # fmt: skip
        assert {op in ops for ops, _ in ran} == {True, False}, (op, ran)
        assert all((op in ops) == (gated in passes) for ops, passes in ran), (op, ran)
    for _, passes in ran:  # never in this graph; the last two always
        assert "FuseBatchNormPass" not in passes and "ConvertToSDPAPass" not in passes, passes
        assert "ChannelsLastTaggedReshapePass" in passes and "RemoveRedundantCopyPass" in passes, passes
    ran.clear()
    monkeypatch.setattr(es, "_xnnpack_skips_passes_without_targets", contextlib.nullcontext)
    es.lower({"forward": traced()}, {}, "xnnpack", all_pte)
    assert ran and all(len(passes) == 17 for _, passes in ran)
    assert gated_pte.read_bytes() == all_pte.read_bytes()
