"""The exported text-to-speech program (run by ExecuTorch's runtime with libvoxtral's
kernels) against the eager model: each method, the LM cache shared by prefill and decode,
the chunked codec schedule, quantized and bf16-edge exports, metadata, voices, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import voxtral_native
from voxtral_native.artifact import FORMAT_VERSION, read_artifact
from voxtral_native.export.export_tts import TtsExportOptions, _Codec, _Decode, _Prefill, _SemanticLogits
from voxtral_native.export.metadata import CHUNK_FRAMES, CODEC_CONTEXT_FRAMES, FIRST_CHUNK_FRAMES
from voxtral_native.export.models.tts import decode_with_context
from voxtral_native.export.tts_checkpoint import load_tts
from voxtral_native.export.voices import read_voices

voxtral_native.native()  # registers voxtral:: kernels with the ExecuTorch runtime

N_CODES, SEMANTIC, LEVELS = 37, 8192, 21


@pytest.fixture(scope="module", autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def eager(tiny_tts_dir):
    return load_tts(tiny_tts_dir)


def load_program(artifact):
    from executorch.runtime import Runtime

    return Runtime.get().load_program(str(artifact / "model.pte"))


def run(program, method: str, *inputs):
    return program.load_method(method).execute(list(inputs))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def special_ids(tekken_path) -> dict[str, int]:
    return {t["token_str"]: t["rank"] for t in json.loads(tekken_path.read_text())["special_tokens"]}


def prompt(tekken_path, voice_rows: int, text_ids: list[int]) -> torch.Tensor:
    """[1, T]: [BOS] [BEGIN_AUDIO] [AUDIO]*N [NEXT_AUDIO_TEXT] text [REPEAT_AUDIO_TEXT] [BEGIN_AUDIO] [AUDIO]."""
    s = special_ids(tekken_path)
    ids = [s["<s>"], s["[BEGIN_AUDIO]"], *[s["[AUDIO]"]] * voice_rows, s["[NEXT_AUDIO_TEXT]"], *text_ids,
           s["[REPEAT_AUDIO_TEXT]"], s["[BEGIN_AUDIO]"], s["[AUDIO]"]]  # fmt: skip
    return torch.tensor([ids])


def artifact_voice(artifact, name: str) -> torch.Tensor:
    """[1, N, dim] float32 rows of one voice, read from voices.f32 through the manifest index."""
    index = json.loads((artifact / "manifest.json").read_text())["voices"]
    entry = index["voices"][name]
    rows = np.fromfile(artifact / index["file"], dtype="<f4").reshape(-1, index["dim"])
    return torch.from_numpy(rows[entry["first_row"] : entry["first_row"] + entry["rows"]].copy())[None]


def program_codec(program, codes: torch.Tensor) -> torch.Tensor:
    """codes [1, n, 37] -> audio [n * 1920] through the program's fixed-size codec: padded on
    the right with EMPTY_AUDIO, the first n frames' samples kept (the codec is causal)."""
    frames = run(program, "max_codec_frames")[0]
    n = codes.shape[1]
    padded = torch.cat([codes, torch.zeros(1, frames - n, N_CODES, dtype=torch.long)], dim=1)
    (audio,) = run(program, "codec", padded)
    assert audio.shape == (1, frames * 1920)
    return audio[0, : n * 1920]


def real_codes(generator, frames: int) -> torch.Tensor:
    """[1, F, 37] shifted codes: semantic in [2, 8194), acoustic in [2, 23)."""
    semantic = torch.randint(2, 2 + SEMANTIC, (1, frames, 1), generator=generator)
    acoustic = torch.randint(2, 2 + LEVELS, (1, frames, N_CODES - 1), generator=generator)
    return torch.cat([semantic, acoustic], dim=-1)


# --- the artifact ------------------------------------------------------------------------


def test_artifact_directory(tiny_tts_artifact, tiny_tts_dir):
    assert sorted(p.name for p in tiny_tts_artifact.iterdir()) == ["manifest.json", "model.pte", "tekken.json",
                                                                   "voices.f32"]  # fmt: skip
    assert (tiny_tts_artifact / "tekken.json").read_bytes() == (tiny_tts_dir / "tekken.json").read_bytes()
    artifact = read_artifact(tiny_tts_artifact, "tts")  # the index both runtimes read
    assert (artifact.format_version, artifact.kind, artifact.backend) == (FORMAT_VERSION, "tts", "xnnpack")
    assert artifact.files == {"program": "model.pte", "tokenizer": "tekken.json", "voices": "voices.f32"}
    manifest = json.loads((tiny_tts_artifact / "manifest.json").read_text())
    assert manifest["program_bytes"] == (tiny_tts_artifact / "model.pte").stat().st_size
    assert manifest["quantization"] == {"lm": None, "acoustic": None, "codec": None, "embedding": None}
    assert manifest["options"]["dtype"] == "fp32" and manifest["options"]["bf16_edges"] is False
    # the released params.json omits these; the defaults taken are recorded
    assert {name.rsplit(".", 1)[-1] for name in manifest["params_defaults"]} == {"n_decoding_steps", "norm_eps"}


def test_voices_file_holds_every_voice_exactly(tiny_tts_artifact, tiny_tts_dir, eager):
    expected = read_voices(tiny_tts_dir, eager.config.lm.dim)
    index = json.loads((tiny_tts_artifact / "manifest.json").read_text())["voices"]
    assert sorted(index["voices"]) == sorted(expected)
    rows_per_voice = json.loads((tiny_tts_dir / "tekken.json").read_text())["audio"]["voice_num_audio_tokens"]
    for name, rows in expected.items():
        got = artifact_voice(tiny_tts_artifact, name)[0]
        assert got.shape[0] == rows_per_voice[name]
        assert torch.equal(got, rows.float())  # bf16 -> float32 is exact


def test_metadata_constant_methods(tiny_tts_artifact, eager):
    program = load_program(tiny_tts_artifact)
    written = json.loads((tiny_tts_artifact / "manifest.json").read_text())["metadata"]
    for name, value in written.items():
        assert run(program, name)[0] == pytest.approx(value), name
    cfg = eager.config
    assert written["model_kind"] == 2 and written["lm_input_is_bf16"] == 0
    assert (written["sample_rate"], written["samples_per_frame"]) == (24000, 1920)
    assert (written["n_codebooks"], written["semantic_codebook_size"], written["acoustic_levels"]) == (37, 8192, 21)
    assert (written["n_special_codes"], written["empty_audio_code"], written["end_audio_code"]) == (2, 0, 1)
    assert (written["n_decoding_steps"], written["cfg_alpha"], written["dim"]) == (7, 1.2, cfg.lm.dim)
    assert (written["first_chunk_frames"], written["chunk_frames"]) == (5, 25)
    assert written["codec_context_frames"] >= 21  # the released codec's receptive field (test_tts_model)


# --- each method against the eager model -----------------------------------------------------


def test_prefill_and_decode_share_one_cache_and_match_eager(tiny_tts_artifact, tiny_tts_dir, eager):
    """Prefill, then five decode steps fed the eager model's codes: the decode steps read the
    cache prefill wrote (a program whose methods had separate caches fails here)."""
    program = load_program(tiny_tts_artifact)
    voice = artifact_voice(tiny_tts_artifact, "casual_male")
    ids = prompt(tiny_tts_dir / "tekken.json", voice.shape[1], [1000 + 7 * i for i in range(9)])
    h_prog, code_prog = run(program, "prefill", ids, voice)
    h_ref, code_ref = _Prefill(eager, torch.float32)(ids, voice)
    assert rel_err(h_prog, h_ref) < 1e-4  # measured 3.0e-7
    assert torch.equal(code_prog, code_ref)
    g = torch.Generator().manual_seed(3)
    position = ids.shape[1]
    for _ in range(5):
        codes = real_codes(g, 1)[0]  # [1, 37]
        h_prog, code_prog = run(program, "decode", codes, torch.tensor([position]))
        h_ref, code_ref = _Decode(eager, torch.float32)(codes, torch.tensor([position]))
        assert rel_err(h_prog, h_ref) < 1e-4  # measured 0.8-1.2e-7
        assert torch.equal(code_prog, code_ref)
        position += 1


def test_text_prefill_continues_a_cached_voice_prefix(tiny_tts_artifact, tiny_tts_dir, eager):
    """A prefill of one text leaves [BOS] [BEGIN_AUDIO] voice in the cache; text_prefill of
    another text's rest of the prompt at position N + 2 then gives, bit for bit, what a whole
    prefill of that text gives (every row's floats are its own: the linears' and ring
    attention's), and the eager model's hidden state. A prefix of another voice does not."""
    program = load_program(tiny_tts_artifact)
    voice, other = artifact_voice(tiny_tts_artifact, "casual_male"), artifact_voice(tiny_tts_artifact, "cheerful_female")
    n = voice.shape[1]
    tekken = tiny_tts_dir / "tekken.json"
    first = prompt(tekken, n, [1000 + 7 * i for i in range(9)])
    second = prompt(tekken, n, [3000 + 5 * i for i in range(14)])
    h_whole, code_whole = run(program, "prefill", second, voice)
    run(program, "prefill", first, voice)  # the prefix stays; positions past it now hold the first text
    h_cont, code_cont = run(program, "text_prefill", second[:, n + 2 :], torch.tensor([n + 2]))
    assert torch.equal(h_cont, h_whole) and torch.equal(code_cont, code_whole)
    h_ref, _ = _Prefill(eager, torch.float32)(second, voice)
    assert rel_err(h_cont, h_ref) < 1e-4  # measured 3e-7
    # the same rest after another voice's prefix (as long: the same positions) is another state
    other = other[:, :n] if other.shape[1] >= n else torch.cat([other, other[:, : n - other.shape[1]]], dim=1)
    run(program, "prefill", first, other)
    h_stale, _ = run(program, "text_prefill", second[:, n + 2 :], torch.tensor([n + 2]))
    assert rel_err(h_stale, h_whole) > 1e-2


def test_semantic_logits_match_eager(tiny_tts_artifact, eager):
    program = load_program(tiny_tts_artifact)
    hidden = torch.randn(1, eager.config.lm.dim, generator=torch.Generator().manual_seed(1))
    (got,) = run(program, "semantic_logits", hidden)
    expected = _SemanticLogits(eager, torch.float32)(hidden)
    assert got.shape == (1, 8320)
    finite = torch.isfinite(expected)
    assert torch.equal(torch.isfinite(got), finite)  # the same masked entries (0 and >= 8194)
    assert rel_err(got[finite], expected[finite]) < 1e-4  # measured 1.6e-7


def program_acoustic(program, hidden, noise, n_steps=7):
    """The runner's flow loop: acoustic_step n_steps times from x = noise; the last codes."""
    x = noise
    for step in range(n_steps):
        x, codes = run(program, "acoustic_step", hidden, x, torch.tensor([step]))
    return x, codes


def test_acoustic_steps_match_eager(tiny_tts_artifact, eager):
    """Each Euler step against the eager one, and 7 program steps against the eager flow.
    Codes agree except where the eager flow output sits within 1e-4 of a rounding boundary
    (float noise may round either way there)."""
    program = load_program(tiny_tts_artifact)
    at = eager.acoustic_transformer
    g = torch.Generator().manual_seed(2)
    near_boundary = 0
    for _ in range(8):
        hidden, noise = torch.randn(1, eager.config.lm.dim, generator=g), torch.randn(1, 36, generator=g)
        x_got, x_ref = noise, noise
        for step in range(7):
            x_next, codes = run(program, "acoustic_step", hidden, x_got, torch.tensor([step]))
            x_ref = at.euler_step(hidden, x_ref, torch.tensor([step]))
            assert x_next.shape == (1, 36) and codes.dtype == torch.int64 and codes.shape == (1, 36)
            assert float((x_next - x_ref).abs().max()) < 1e-4  # measured <= 6e-7
            x_got = x_next
        expected = at.acoustic_codes(hidden, noise)
        scaled = (at.flow(hidden, noise).clamp(-1, 1) + 1) / 2 * (LEVELS - 1)
        ambiguous = ((scaled - scaled.floor()) - 0.5).abs() < 1e-4
        near_boundary += int(ambiguous.sum())
        assert torch.equal(codes[~ambiguous], expected[~ambiguous])
    assert near_boundary <= 2  # the exemption stays the exception


@pytest.mark.parametrize("frames", [1, 5, 30, 50])
def test_codec_matches_eager(tiny_tts_artifact, eager, frames):
    """n frames padded to the program's 50 give the eager n-frame decode (right padding
    changes no earlier sample)."""
    program = load_program(tiny_tts_artifact)
    codes = real_codes(torch.Generator().manual_seed(frames), frames)
    if frames > 2:
        codes[0, frames // 2] = 0  # an EMPTY_AUDIO frame decodes to a zero latent in both
    got = program_codec(program, codes)
    expected = _Codec(eager)(codes)[0]
    assert rel_err(got, expected) < 1e-4  # measured 1.0-1.1e-6


@pytest.mark.parametrize("frames", [2, FIRST_CHUNK_FRAMES])
def test_first_chunk_codec_gives_the_samples_of_the_long_codec_call(tiny_tts_artifact, eager, frames):
    """first_chunk_codec (first_chunk_frames frames, an utterance's first chunk) gives the samples the
    max_codec_frames call gives for the same frames, padded alike, and the eager decode's."""
    program = load_program(tiny_tts_artifact)
    codes = real_codes(torch.Generator().manual_seed(40 + frames), frames)
    padded = torch.cat([codes, torch.zeros(1, FIRST_CHUNK_FRAMES - frames, N_CODES, dtype=torch.long)], dim=1)
    (got,) = run(program, "first_chunk_codec", padded)
    assert got.shape == (1, FIRST_CHUNK_FRAMES * 1920)
    got = got[0, : frames * 1920]
    long_call = program_codec(program, codes)
    assert float((got - long_call).abs().max()) <= 1e-5 * float(long_call.abs().max())
    assert rel_err(got, _Codec(eager)(codes)[0]) < 1e-4


def test_codec_streamed_on_the_metadata_schedule_equals_the_whole_decode(tiny_tts_artifact, eager):
    """5 frames, then chunks of 25, each decoded by the program after 25 frames of left
    context (the samples of the context dropped): equal to one eager whole-utterance decode."""
    program = load_program(tiny_tts_artifact)
    frames = 80
    codes = real_codes(torch.Generator().manual_seed(9), frames)
    whole = eager.decode(codes)[0]

    def program_decode(chunk):
        return program_codec(program, chunk)[None]

    bounds = [0, FIRST_CHUNK_FRAMES, *range(FIRST_CHUNK_FRAMES + CHUNK_FRAMES, frames, CHUNK_FRAMES), frames]
    pieces = [decode_with_context(program_decode, codes, a, b, CODEC_CONTEXT_FRAMES)[0] for a, b in zip(bounds, bounds[1:])]
    streamed = torch.cat(pieces)
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) < 1e-4 * float(whole.abs().max())


@pytest.mark.parametrize(("method", "shape"), [("codec", (1, 51, N_CODES)), ("codec", (1, 49, N_CODES)),
                                              ("prefill", (1, 513))])  # fmt: skip
def test_out_of_range_inputs_are_refused_by_the_runtime(tiny_tts_artifact, method, shape):
    """The program's bounds hold: a codec call of other than max_codec_frames frames, or a
    prompt past max_prompt_tokens, is an error from the runtime, not a silent overrun."""
    program = load_program(tiny_tts_artifact)
    inputs = [torch.full(shape, 2, dtype=torch.long)]
    if method == "prefill":
        inputs.append(torch.zeros(1, 3, 64))
    with pytest.raises(Exception):  # noqa: B017 (ExecuTorch's pybindings raise RuntimeError or ValueError)
        run(program, method, *inputs)


# --- quantized and bf16-edge exports -----------------------------------------------------------


@pytest.fixture(scope="module")
def quantized(tiny_tts_variant, tiny_tts_dir):
    """(artifact, its program, the eager model quantized by the export's own recipe)."""
    from conftest import TTS_VARIANTS

    from voxtral_native.export.export_tts import tts_quantizer

    artifact = tiny_tts_variant("quantized-bf16-edges")
    options = TtsExportOptions(**TTS_VARIANTS["quantized-bf16-edges"])
    eager_q = load_tts(tiny_tts_dir, max_positions=options.max_positions, max_tokens=options.max_prompt_tokens,
                       on_module_loaded=tts_quantizer(options.schemes))  # fmt: skip
    return artifact, load_program(artifact), eager_q


def test_quantized_export_runs_and_its_error_is_measured(quantized, tiny_tts_dir, eager):
    """LM 8da4w, acoustic 8da8w, codec 4w:32, token table 8w (and bf16 edges), against the
    fp32 eager model. Random tiny weights (rows of 64, two int4 groups each) are far from
    what quantization is tuned for; the bounds are ~2.5x the measured errors, so a broken
    scheme (wrong scales, a transposed weight: relative error ~1) fails."""
    artifact, program, _ = quantized
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["quantization"] == {"lm": "8da4w:32", "acoustic": "8da8w:0", "codec": "4w:32", "embedding": "8w:0"}
    voice = artifact_voice(artifact, "neutral_female").to(torch.bfloat16)
    ids = prompt(tiny_tts_dir / "tekken.json", voice.shape[1], [2000 + i for i in range(6)])
    h_q, _ = run(program, "prefill", ids, voice)
    h_ref, _ = _Prefill(eager, torch.float32)(ids, voice.float())
    assert rel_err(h_q, h_ref) < 0.3  # measured 0.113-0.118 over three voices and prompts (0.125 with bf16 edges)
    # the voice prefix reused: bit for bit the whole prefill (rows are quantized one by one)
    n = voice.shape[1]
    h_cont, _ = run(program, "text_prefill", ids[:, n + 2 :], torch.tensor([n + 2]))
    assert torch.equal(h_cont, h_q)
    g = torch.Generator().manual_seed(4)
    hidden = torch.randn(1, eager.config.lm.dim, generator=g).to(torch.bfloat16)
    noise = torch.randn(1, 36, generator=g).to(torch.bfloat16)
    _, codes_q = program_acoustic(program, hidden, noise)
    codes_ref = eager.acoustic_transformer.acoustic_codes(hidden.float(), noise.float())
    assert float((codes_q - codes_ref).abs().float().mean()) < 0.5  # measured 0-0.17 levels of 21
    codes = real_codes(g, 20)
    assert rel_err(program_codec(program, codes), _Codec(eager)(codes)[0]) < 0.2  # measured 0.072-0.086 (4-bit)


def test_bf16_edge_export(quantized, tiny_tts_dir):
    """bf16 inputs and outputs over float32 compute: the metadata says so (the runner's
    staging keys on it), the methods take and give bf16, and the results stay near the eager
    model quantized the same way (bf16 rounding at the edges, and the kernels' own rounding
    against torchao's reference arithmetic)."""
    artifact, program, eager_q = quantized
    assert run(program, "lm_input_is_bf16")[0] == 1
    voice = artifact_voice(artifact, "casual_female").to(torch.bfloat16)
    ids = prompt(tiny_tts_dir / "tekken.json", voice.shape[1], [3000 + i for i in range(5)])
    h, code = run(program, "prefill", ids, voice)
    assert h.dtype == torch.bfloat16 and code.dtype == torch.int64
    h_ref, _ = _Prefill(eager_q, torch.float32)(ids, voice.float())
    assert rel_err(h, h_ref) < 0.03  # measured 0.0108-0.0119 over three voices and prompts (0.11-0.12 to fp32)
    with pytest.raises(Exception):  # noqa: B017: a float32 input where bf16 is planned
        run(program, "semantic_logits", torch.zeros(1, eager_q.config.lm.dim))
    (logits,) = run(program, "semantic_logits", h)
    assert logits.dtype == torch.bfloat16
    logits_ref = _SemanticLogits(eager_q, torch.float32)(h.float())
    real = torch.isfinite(logits_ref)  # EMPTY_AUDIO and the padding rows are -inf in both
    assert torch.equal(torch.isfinite(logits.float()), real)
    assert rel_err(logits.float()[real], logits_ref[real]) < 0.005  # measured 0.00164-0.00167
    audio = program_codec(program, real_codes(torch.Generator().manual_seed(5), 3))
    assert audio.dtype == torch.float32  # the codec computes and answers in float32


# --- the CLI and option checks ---------------------------------------------------------------


def test_export_cli_refuses_a_checkpoint_of_the_other_kind(tiny_tts_dir, tmp_path):
    r = subprocess.run([sys.executable, "-m", "voxtral_native", "export", "stt", "--checkpoint", str(tiny_tts_dir),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and str(tiny_tts_dir) in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(backend="tpu"), "unknown backend"),
        (dict(backend="cuda", quant="8da4w"), "takes 4w or 8w linears"),
        (dict(backend="cuda", embedding_quant="8w"), "drop --embedding-quant"),
        (dict(dtype="fp8"), "unknown dtype"),
        (dict(max_prompt_tokens=0), "max_prompt_tokens must be at least 1"),
        (dict(max_prompt_tokens=5000), "cannot exceed max_positions"),
        (dict(quant="3w"), "3w"),
        (dict(quant="8da4w", dtype="bf16"), "needs float32 or float16"),
        (dict(max_codec_frames=49), "at least 50"),
    ],
)
def test_bad_export_options_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        TtsExportOptions(**options)


def test_codec_frames_must_hold_a_chunk_and_its_context(tiny_tts_dir, tmp_path):
    r = subprocess.run([sys.executable, "-m", "voxtral_native", "export", "tts", "--checkpoint", str(tiny_tts_dir),
                        "--out", str(tmp_path / "out"), "--max-codec-frames", "30"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "max_codec_frames must hold a chunk and its context: at least 50" in r.stderr


def test_models_route_a_tts_artifact_by_kind(tiny_tts_artifact, tiny_stt_dir):
    from voxtral_native.errors import InvalidModelError
    from voxtral_native.models import EXPORTERS, checkpoint_kind, resolve_model

    assert resolve_model(tiny_tts_artifact, "tts") == tiny_tts_artifact
    with pytest.raises(InvalidModelError, match="expected"):
        resolve_model(tiny_tts_artifact, "stt")
    assert checkpoint_kind(tiny_stt_dir) == "stt" and "voice_embedding/*" in EXPORTERS["tts"].extra_files
    with pytest.raises(InvalidModelError, match="speech-to-text checkpoint; expected a text-to-speech one"):
        resolve_model(tiny_stt_dir, "tts")
