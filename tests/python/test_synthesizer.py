"""Text-to-speech through the native runner (TtsRunner / TtsSession) and the Python
Synthesizer, on the tiny random-weight checkpoint exported fp32 for XNNPACK:

- the runner's codes equal, frame by frame, a reference loop over the eager PyTorch model fed
  the same noise, and its audio equals the eager codec's decode of those codes;
- the generator equals the facts sheet's, computed here independently (Python integers with
  explicit 64-bit masking, float32 arithmetic, the C library's logf / cosf);
- the same seed gives bit-identical audio across sessions, threads and processes;
  stream() concatenated is synthesize(); the chunk schedule is the metadata's;
- long text is several utterances with pauses; bf16 program edges run end to end;
- bad input is a clear exception, never a crash or a hang.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import voxtral_native
from voxtral_native import InvalidArgumentError, InvalidModelError, StateError, Synthesizer

core = voxtral_native.native()
N_CODES, SPF = 37, 1920

# --- the generator, written out independently -------------------------------------------------

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _f in ("logf", "cosf"):
    getattr(_libm, _f).restype = ctypes.c_float
    getattr(_libm, _f).argtypes = [ctypes.c_float]
_MASK = (1 << 64) - 1


def reference_noise(seed: int, n: int) -> np.ndarray:
    """The facts sheet's generator: xorshift64, the top 53 bits as a float32 uniform, the
    cos branch of Box-Muller with u1 drawn first and redrawn while < 1e-30."""
    x = seed if seed != 0 else 0x12345678ABCDEF01
    f32 = np.float32

    def uniform() -> np.float32:
        nonlocal x
        x ^= (x << 13) & _MASK
        x ^= x >> 7
        x ^= (x << 17) & _MASK
        return f32(x >> 11) * f32(1.0 / 9007199254740992.0)  # a 53-bit int is exact in a double

    out = np.empty(n, np.float32)
    for i in range(n):
        u1 = uniform()
        while u1 < f32(1e-30):
            u1 = uniform()
        u2 = uniform()
        r = np.sqrt(f32(-2.0) * f32(_libm.logf(u1)))
        out[i] = r * f32(_libm.cosf(f32(6.2831853071795864) * u2))
    return out


@pytest.mark.parametrize("seed", [0, 1, 42, 2**63, 2**64 - 1])
def test_the_generator_is_the_facts_sheets(seed):
    got = core.tts_noise(seed, 300)
    expected = reference_noise(seed, 300)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # bit for bit
    assert np.isfinite(got).all() and 0.8 < got.std() < 1.2


def test_seed_zero_is_the_fixed_state():
    assert np.array_equal(core.tts_noise(0, 50), core.tts_noise(0x12345678ABCDEF01, 50))


def test_bf16_staging_rounds_as_torch():
    """Every float32 bit pattern class: ties, subnormals, inf, NaN, the largest finite values."""
    import torch

    rng = np.random.default_rng(0)
    bits = np.concatenate([
        rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32),
        np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x00000001, 0x007FFFFF, 0x00008000,
                  0x00018000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x80000000, 0], dtype=np.uint32),
    ])  # fmt: skip
    values = bits.view(np.float32)
    got = core.to_bfloat16_bits(values)
    expected = torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    nan = np.isnan(values)
    assert np.array_equal(got[~nan], expected[~nan])
    assert (got[nan] == 0x7FC0).all()  # one quiet NaN
    back = core.from_bfloat16_bits(np.arange(65536, dtype=np.uint16))
    assert np.array_equal(back.view(np.uint32), np.arange(65536, dtype=np.uint32) << 16)  # exact


# --- the runner against a reference loop over the eager model ---------------------------------


@pytest.fixture(scope="module")
def eager(tiny_tts_dir):
    import torch

    from voxtral_native.export.tts_checkpoint import load_tts

    with torch.no_grad():
        yield load_tts(tiny_tts_dir)


@pytest.fixture(scope="module")
def synth(tiny_tts_artifact):
    return Synthesizer(tiny_tts_artifact, progress=lambda _: None)


def reference_codes(eager, tiny_tts_dir, artifact, text: str, voice: str, seed: int, frames: int):
    """The loop of voxtral/tts.h in PyTorch: the prompt from mistral_common's tokenizer, the
    voice rows from the artifact, greedy semantic codes, the facts sheet's noise."""
    import torch
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    from voxtral_native.export.voices import VOICES_FILE

    tok = Tekkenizer.from_file(str(tiny_tts_dir / "tekken.json"))
    special = {name: tok.get_special_token(name) for name in
               ("<s>", "[BEGIN_AUDIO]", "[AUDIO]", "[NEXT_AUDIO_TEXT]", "[REPEAT_AUDIO_TEXT]")}  # fmt: skip
    index = json.loads((artifact / "manifest.json").read_text())["voices"]
    first, rows = index["voices"][voice]["first_row"], index["voices"][voice]["rows"]
    table = np.fromfile(artifact / VOICES_FILE, dtype="<f4").reshape(-1, index["dim"])
    voice_rows = torch.from_numpy(table[first : first + rows].copy())
    ids = [special["<s>"], special["[BEGIN_AUDIO]"], *[special["[AUDIO]"]] * rows, special["[NEXT_AUDIO_TEXT]"],
           *tok.encode(text, bos=False, eos=False), special["[REPEAT_AUDIO_TEXT]"], special["[BEGIN_AUDIO]"],
           special["[AUDIO]"]]  # fmt: skip
    at = eager.acoustic_transformer
    noise = reference_noise(seed, 36 * frames).reshape(frames, 1, 36)
    with torch.no_grad():
        embeds = eager.embed_tokens(torch.tensor([ids]))
        embeds[:, 2 : 2 + rows] = voice_rows
        h = eager.hidden_states(embeds, torch.tensor([0]))[:, -1]
        position, out = len(ids), []
        for f in range(frames):
            semantic = at.semantic_code(h)
            assert int(semantic) != 1, "END_AUDIO: pick another prompt for this test"
            acoustic = at.acoustic_codes(h, torch.from_numpy(noise[f]))
            codes = torch.cat([semantic[:, None], acoustic], dim=1)  # [1, 37]
            out.append(codes[0].numpy())
            h = eager.hidden_states(eager.embed_codes(codes)[:, None], torch.tensor([position]))[:, 0]
            position += 1
    return np.stack(out)


def test_runner_codes_and_audio_equal_the_eager_reference(synth, eager, tiny_tts_dir, tiny_tts_artifact):
    import torch

    text, voice, seed, frames = "Hello, how are you today?", "casual_male", 7, 32
    session = synth.session(text, voice=voice, seed=seed, max_frames=frames)
    audio = np.concatenate(list(session))
    got = session.codes()
    expected = reference_codes(eager, tiny_tts_dir, tiny_tts_artifact, text, voice, seed, frames)
    assert got.shape == (frames, N_CODES)
    for f in range(frames):  # frame by frame, so a failure names the first frame that differs
        assert np.array_equal(got[f], expected[f]), f"frame {f}: {got[f]} != {expected[f]}"
    with torch.no_grad():
        whole = eager.decode(torch.from_numpy(expected)[None])[0].numpy()
    assert audio.shape == (frames * SPF,) == whole.shape
    # measured max |diff| / max |whole| 1.25e-6 (two prompts): XNNPACK's codec against eager
    # float32; a different seed gives other codes (checked by hand: the comparison can fail)
    assert float(np.abs(audio - whole).max()) < 1e-4 * float(np.abs(whole).max())


def test_chunks_follow_the_metadata_schedule(synth):
    meta = synth.metadata
    session = synth.session("One two three.", max_frames=64)
    sizes = [c.size for c in session]
    first, every = meta["first_chunk_frames"] * SPF, meta["chunk_frames"] * SPF
    assert sizes == [first, every, every, (64 - 5 - 50) * SPF]  # 5, 25, 25, then the last 9 frames
    assert session.done and session.frames == 64


def test_same_seed_same_audio_across_sessions_and_threads(synth):
    kwargs = dict(voice="fr_female", seed=123, max_frames=30)
    a = synth.synthesize("Bonjour tout le monde.", **kwargs)
    results = {}

    def run(i):
        results[i] = synth.synthesize("Bonjour tout le monde.", **kwargs)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in results.values():
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    other = synth.synthesize("Bonjour tout le monde.", voice="fr_female", seed=124, max_frames=30)
    assert not np.array_equal(a, other)  # the seed matters


def test_same_seed_same_audio_in_another_process(synth, tiny_tts_artifact):
    audio = synth.synthesize("Numbers: 1, 2, 3.", seed=2**64 - 1, max_frames=12)
    code = ("import hashlib, sys, voxtral_native as v; a = v.Synthesizer(sys.argv[1], progress=None)"
            ".synthesize('Numbers: 1, 2, 3.', seed=2**64 - 1, max_frames=12); print(hashlib.sha256(a.tobytes()).hexdigest())")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code, str(tiny_tts_artifact)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == hashlib.sha256(audio.tobytes()).hexdigest()


def test_requests_one_after_another_reuse_one_program(tiny_tts_artifact):
    """A closed session's Program serves the next request: three requests in a row load (on
    XNNPACK: pack) each method once, and the Program reused after a longer request speaks
    exactly as the fresh one did (its KV cache is not cleared: idle_program.h says why)."""
    import os

    code = ("import sys, voxtral_native as v; s = v.Synthesizer(sys.argv[1], progress=None); "
            "first = s.synthesize('Numbers: 1, 2, 3.', seed=5, max_frames=12); "
            "s.synthesize('A longer request leaves more of the cache written. ' * 4, seed=6, max_frames=60); "
            "again = s.synthesize('Numbers: 1, 2, 3.', seed=5, max_frames=12); "
            "print(first.size > 0 and first.tobytes() == again.tobytes())")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code, str(tiny_tts_artifact)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "VOXTRAL_VERBOSE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "True"
    loads = [line for line in r.stderr.splitlines() if line.startswith("voxtral: loaded method ")]
    for method in ("prefill", "decode", "acoustic_step", "codec"):
        assert sum(f"'{method}'" in line for line in loads) == 1, loads


def test_a_cached_voice_prefix_speaks_as_a_whole_prefill(tiny_tts_artifact):
    """An utterance whose voice prefix the Program's LM cache holds (a later utterance of a
    request, or a request after one with that voice) is prefilled from [NEXT_AUDIO_TEXT] on
    (text_prefill) and speaks bit for bit as a whole prefill did; another voice in between
    makes the next request prefill whole again. VOXTRAL_PROFILE counts the calls of each
    method; an utterance's first chunk goes through first_chunk_codec."""
    import os
    import re

    code = """
import sys, voxtral_native as v
s = v.Synthesizer(sys.argv[1], progress=None)
a, b = s.voices[0], s.voices[1]
text = 'Numbers: 1, 2, 3.'
first = s.synthesize(text, voice=a, seed=5, max_frames=12)                      # prefill
s.synthesize('A longer request of two sentences. ' * 12, voice=a, seed=6, max_frames=40)  # text_prefill
other = s.synthesize(text, voice=b, seed=5, max_frames=12)                      # prefill
again = s.synthesize(text, voice=a, seed=5, max_frames=12)                      # prefill
cached = s.synthesize(text, voice=a, seed=5, max_frames=12)                     # text_prefill
fresh_b = v.Synthesizer(sys.argv[1], progress=None).synthesize(text, voice=b, seed=5, max_frames=12)
print(first.size > 0, first.tobytes() == again.tobytes() == cached.tobytes(), other.tobytes() == fresh_b.tobytes(),
      first.tobytes() != other.tobytes())
"""
    r = subprocess.run([sys.executable, "-c", code, str(tiny_tts_artifact)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "VOXTRAL_PROFILE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True"] * 4, r.stdout
    calls: dict[str, int] = {}
    for n, method in re.findall(r"^\s+[\d.]+\s+(\d+)\s+[\d.]+\s+(\w+) \[", r.stderr, re.M):
        calls[method] = calls.get(method, 0) + int(n)
    assert calls.get("prefill") == 4, r.stderr[-3000:]  # first, other, again, fresh_b
    assert calls.get("text_prefill", 0) >= 2, r.stderr[-3000:]  # the long request's utterances, cached
    assert calls.get("first_chunk_codec", 0) >= 5, r.stderr[-3000:]


def test_stream_concatenated_is_synthesize(synth):
    text = "It was a bright cold day in April, and the clocks were striking thirteen."
    streamed = list(synth.stream(text, seed=5, max_frames=40))
    assert len(streamed) > 1 and all(c.dtype == np.float32 and c.ndim == 1 for c in streamed)
    assert np.array_equal(np.concatenate(streamed), synth.synthesize(text, seed=5, max_frames=40))


def test_temperature_samples_with_the_session_generator(synth):
    a = synth.synthesize("Sampled speech.", seed=9, max_frames=10, temperature=0.8)
    b = synth.synthesize("Sampled speech.", seed=9, max_frames=10, temperature=0.8)
    greedy = synth.synthesize("Sampled speech.", seed=9, max_frames=10)
    assert np.array_equal(a, b) and not np.array_equal(a, greedy)


@pytest.mark.parametrize("text", ["🙂🎉🚀", "𒀀𒀁𒀂 ꙮ", "  3.14159 + $42 = ?  "])
def test_emoji_rare_scripts_and_symbols_synthesize(synth, text):
    audio = synth.synthesize(text, max_frames=6)
    assert audio.shape == (6 * SPF,) and np.isfinite(audio).all()


def test_save_writes_the_synthesized_samples(synth, tmp_path):
    import soundfile as sf

    path = synth.save("Saved to a file.", tmp_path / "out.wav", seed=3, max_frames=8, subtype="FLOAT")
    data, rate = sf.read(path, dtype="float32")
    assert rate == 24000 and np.array_equal(data, synth.synthesize("Saved to a file.", seed=3, max_frames=8))
    with pytest.raises(voxtral_native.VoxtralIOError, match="cannot write audio"):
        synth.save("x", tmp_path / "no" / "such" / "dir.wav", max_frames=1)


# --- long text and bf16 edges (the quantized bf16-edge variant: 192 positions per utterance) ---


def test_long_text_is_spoken_as_utterances_with_pauses(tiny_tts_variant):
    artifact = tiny_tts_variant("quantized-bf16-edges")
    synth = Synthesizer(artifact, progress=lambda _: None)
    assert synth.metadata["lm_input_is_bf16"] == 1
    text = " ".join(f"This is sentence number {i}, which has a few words in it." for i in range(1, 13))
    parts = synth.split_text(text)
    assert len(parts) > 1 and "".join(parts).replace(" ", "") == text.replace(" ", "")
    session = synth.session(text, max_frames=len(parts) * 200, pause_frames=3)
    chunks = list(session)
    audio = np.concatenate(chunks)
    assert session.done and session.utterances == len(parts)
    # every utterance runs until its 192 positions are used (random weights never end), so the
    # audio is exactly the emitted frames plus 3 frames of silence between utterances
    assert audio.size == (session.frames + 3 * (len(parts) - 1)) * SPF
    assert np.isfinite(audio).all() and float(np.abs(audio).max()) > 0
    pauses = [c for c in chunks if c.size == 3 * SPF and not c.any()]
    assert len(pauses) == len(parts) - 1
    # (Seeded synthesis repeating bit for bit, streamed or whole, is checked above on short
    # texts; running this long text twice cost ~100 s of CI.)


def test_bf16_edges_run_end_to_end(tiny_tts_variant, synth):
    bf16 = Synthesizer(tiny_tts_variant("quantized-bf16-edges"), progress=lambda _: None)
    a = bf16.synthesize("Hello there.", seed=1, max_frames=20)
    ref = synth.synthesize("Hello there.", seed=1, max_frames=20)
    assert a.shape == ref.shape == (20 * SPF,) and np.isfinite(a).all()


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(text=""), InvalidArgumentError, "empty"),
        (dict(text=" \n\t "), InvalidArgumentError, "empty"),
        # Unicode's whitespace and a byte order mark are whitespace too (the runner's rule)
        (dict(text="\u00a0\u3000\u2003\u2028\u202f\ufeff"), InvalidArgumentError, "empty"),
        (dict(text="ab\ud800c"), InvalidArgumentError, "not valid UTF-8: a lone surrogate at index 2"),
        (dict(text=b"bytes"), InvalidArgumentError, "must be a str"),
        (dict(text="hi", voice="nobody"), InvalidArgumentError, "unknown voice 'nobody'; this model has: ar_male"),
        (dict(text="hi", seed=-1), InvalidArgumentError, r"seed must be in \[0, 2\*\*64 - 1\]"),
        (dict(text="hi", seed=2**64), InvalidArgumentError, r"seed must be in"),
        (dict(text="hi", seed=1.5), InvalidArgumentError, "seed must be an integer"),
        (dict(text="hi", max_frames=0), InvalidArgumentError, "max_frames must be a positive"),
        (dict(text="hi", max_frames=-3), InvalidArgumentError, "max_frames must be a positive"),
        (dict(text="hi", temperature=-1.0), InvalidArgumentError, "temperature"),
        (dict(text="hi", temperature=float("nan")), InvalidArgumentError, "temperature"),
    ],
)
def test_bad_requests_are_clear_errors(synth, kwargs, error, message):
    with pytest.raises(error, match=message):
        synth.synthesize(**kwargs)


def test_native_errors_for_bad_requests(tiny_tts_artifact):
    runner = core.TtsRunner.load(str(tiny_tts_artifact))
    with pytest.raises(InvalidArgumentError, match="unknown voice 'x'"):
        runner.new_session("hi", "x")
    with pytest.raises(InvalidArgumentError, match="empty"):
        runner.new_session("   ")
    empty = r"^the text is empty \(or only whitespace\): nothing to say$"
    for blank in ["\u3000", "\u00a0 \u2009", "\ufeff\n"]:  # the same error as "   ", in one place
        for call in (lambda: runner.new_session(blank), lambda: runner.split_text(blank)):
            with pytest.raises(InvalidArgumentError, match=empty):
                call()
    # Bytes that are not UTF-8 (a bytes argument reaches the runner as they are): the message
    # names the problem and the offset, not the tokenizer's encode_bytes.
    for call in (lambda: runner.new_session(b"caf\xe9 au lait"), lambda: runner.split_text(b"caf\xe9 au lait")):
        with pytest.raises(InvalidArgumentError, match=r"^the text is not valid UTF-8 \(at byte 3\)$"):
            call()
    with pytest.raises(InvalidArgumentError, match="max_frames"):
        runner.new_session("hi", "", 1, -1)
    session = runner.new_session("hi", "", 1, 3)
    while not session.done:
        session.next()
    with pytest.raises(StateError, match="done"):
        session.next()


def test_two_threads_pulling_one_session(tiny_tts_artifact):
    """The native session refuses a second caller (the Python wrapper's lock is bypassed)."""
    runner = core.TtsRunner.load(str(tiny_tts_artifact))
    session = runner.new_session("A sentence long enough to take a while.", "", 1, 400)
    errors, pulled = [], []

    def pull():
        try:
            while not session.done:
                pulled.append(session.next()[0].size)
        except StateError as e:
            errors.append(e)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors and "in use by another thread" in str(errors[0])
    assert sum(pulled) == session.frames * SPF  # every chunk once


def test_a_speech_to_text_artifact_is_refused(tiny_stt_artifact):
    with pytest.raises(InvalidModelError, match="expected a text-to-speech"):
        Synthesizer(tiny_stt_artifact, progress=lambda _: None)


def test_a_tts_artifact_is_refused_by_the_transcriber(tiny_tts_artifact):
    from voxtral_native import Transcriber

    with pytest.raises(InvalidModelError, match="expected a speech-to-text"):
        Transcriber(tiny_tts_artifact, progress=lambda _: None)


def _broken_copy(src, tmp_path, name):
    out = tmp_path / name
    shutil.copytree(src, out)
    return out


def test_a_truncated_program_is_a_clear_error(tiny_tts_artifact, tmp_path):
    art = _broken_copy(tiny_tts_artifact, tmp_path, "truncated")
    pte = art / "model.pte"
    pte.write_bytes(pte.read_bytes()[: pte.stat().st_size // 3])
    with pytest.raises(InvalidModelError, match="model.pte"):
        Synthesizer(art, progress=lambda _: None)


def test_a_voice_file_of_the_wrong_shape_is_a_clear_error(tiny_tts_artifact, tmp_path):
    art = _broken_copy(tiny_tts_artifact, tmp_path, "badvoices")
    voices = art / "voices.f32"
    voices.write_bytes(voices.read_bytes()[:-12])  # not whole rows
    with pytest.raises(InvalidModelError, match="voices.f32"):
        Synthesizer(art, progress=lambda _: None)
    manifest = json.loads((art / "manifest.json").read_text())
    shutil.copyfile(tiny_tts_artifact / "voices.f32", voices)
    manifest["voices"]["dim"] = 65
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidModelError, match="voices.dim"):
        Synthesizer(art, progress=lambda _: None)


def test_runtime_reads_every_constant_the_export_writes(tiny_tts_artifact):
    written = json.loads((tiny_tts_artifact / "manifest.json").read_text())["metadata"]
    read = core.TtsRunner.load(str(tiny_tts_artifact)).metadata
    assert list(read) == list(written)
    assert read == pytest.approx(written)
