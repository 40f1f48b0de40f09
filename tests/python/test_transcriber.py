"""Speech-to-text end to end: the native runner (C++ mel, schedule, program) against the
eager PyTorch reference; streaming == offline; sessions in threads; inputs; errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import voxtral_native
from voxtral_native import errors
from voxtral_native.transcriber import Piece, Transcriber, words_from_pieces

DATA = Path(__file__).parents[1] / "data"
CLIP = DATA / "speech_en_espeak.wav"


@pytest.fixture(scope="module")
def transcriber(tiny_stt_artifact):
    return Transcriber(tiny_stt_artifact)


@pytest.fixture(scope="module")
def clip_audio():
    audio, rate = sf.read(CLIP, dtype="float32")
    assert rate == 16000
    return audio


@pytest.fixture(scope="module")
def offline(transcriber):
    return transcriber.transcribe(CLIP)


def test_runner_tokens_equal_a_greedy_decode_of_the_eager_reference(offline, tiny_stt_dir):
    """Same weights, same schedule (mistral_common's request padding and prompt, HF's mel),
    greedy decoding of the eager PyTorch model: the same ids, step for step."""
    import torch
    from stt_reference import reference_request
    from test_stt_export import eager_stream

    from voxtral_native.export.checkpoint import load_stt

    prompt, mel = reference_request(tiny_stt_dir / "tekken.json", CLIP)
    with torch.no_grad():
        _, _, ref_tokens = eager_stream(load_stt(tiny_stt_dir, max_encoder_tokens=32), mel, prompt, chunking=[32])
    assert offline.tokens == ref_tokens
    assert len(offline.tokens) == mel.shape[2] // 8 - len(prompt) + 1  # one per decoder step


@pytest.mark.parametrize("sizes", [[1], [37], [1280], [16000], [1, 37, 1280, 16000, 5, 999]])
def test_streaming_in_any_chunking_equals_offline(transcriber, clip_audio, offline, sizes):
    audio = clip_audio if sizes != [1] else clip_audio[: 16000 * 2]  # 1-sample feeds: 2 s
    expected = offline if sizes != [1] else transcriber.transcribe(audio, sample_rate=16000)
    session = transcriber.session()
    pieces, start, i = [], 0, 0
    while start < len(audio):
        size = sizes[i % len(sizes)]
        session.feed(audio[start : start + size])
        pieces += session.drain()
        start, i = start + size, i + 1
    pieces += session.flush()
    assert [p.token_id for p in pieces if p.token_id >= 0] == expected.tokens
    assert "".join(p.text for p in pieces) == expected.text
    assert transcriber.transcript(pieces) == expected  # words and times too


def test_stream_generator_yields_the_same_text(transcriber, clip_audio, offline):
    chunks = (clip_audio[i : i + 3000] for i in range(0, len(clip_audio), 3000))
    assert "".join(transcriber.stream(chunks)) == offline.text


def test_control_token_ids_come_from_the_tokenizer(transcriber):
    assert transcriber._runner.id_of("[STREAMING_WORD]") == 33
    assert transcriber._runner.id_of("[STREAMING_PAD]") == 32
    with pytest.raises(errors.NotFoundError, match=r"\[NOPE\]"):
        transcriber._runner.id_of("[NOPE]")


def test_transcript_fields(transcriber, offline):
    assert offline.tokens and all(0 <= t < 131072 for t in offline.tokens)
    steps = [p.step for p in offline.pieces if p.token_id >= 0]
    assert steps == list(range(len(steps)))
    assert offline.pieces[1].time_s == pytest.approx(0.08)
    assert transcriber.seconds_per_step == pytest.approx(0.08)


def test_words_from_pieces_use_spaces_and_word_boundaries():
    pieces = [Piece("", 32, 0, 0.0), Piece("Hel", 5, 1, 0.08), Piece("lo", 6, 2, 0.16), Piece(" wor", 7, 3, 0.24),
              Piece("ld", 8, 4, 0.32), Piece("", 33, 5, 0.40), Piece("again", 9, 6, 0.48)]
    words = words_from_pieces(pieces, 0.08, word_token=33)
    assert [(w.text, w.start_s, round(w.end_s, 2)) for w in words] == [
        ("Hello", 0.08, 0.24), ("world", 0.24, 0.4), ("again", 0.48, 0.56)]


def test_sessions_in_threads_share_one_runner(transcriber, clip_audio, offline):
    results: dict[int, list[int]] = {}

    def run(k: int) -> None:
        results[k] = transcriber.transcribe(clip_audio, sample_rate=16000).tokens

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(tokens == offline.tokens for tokens in results.values())


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_extra_sessions_do_not_repeat_the_weights(transcriber, clip_audio):
    """Each session maps the program and plans its own memory (caches, activations), but
    XNNPACK's packed weights are shared. On the tiny model the packed fp32 output head
    alone is 131072 x 64 x 4 B = 33.5 MB: a session that repeated it would cost that much
    more than its own plan, which is a few MB of state plus the decode logits of up to 64
    positions (64 x 131072 x 4 B = 33.5 MB, zero-filled when the method loads)."""
    second = np.ascontiguousarray(clip_audio[:16000])
    first = transcriber.session()
    first.feed(second)  # loads both methods, packs the weights
    first.drain()
    before = _rss_mb()
    sessions = [transcriber.session() for _ in range(4)]
    for s in sessions:
        s.feed(second)
        s.drain()
    per_session = (_rss_mb() - before) / len(sessions)
    planned = transcriber.session_memory_bytes / 2**20
    assert per_session < planned + 8, f"each extra session costs {per_session:.1f} MB (plans {planned:.1f} MB)"
    # What a session plans (its pages are touched as the stream advances: the rings fill).
    assert 0.5 < planned < 12 + 32


def test_sessions_one_after_another_reuse_one_program(tiny_stt_artifact, offline):
    """A closed session's Program serves the next session: transcribe() three times, with a
    30 s stream between (the encoder's ring wraps; the decoder's holds positions the next
    stream has not reached), loads (on XNNPACK: packs) each method once, and every
    transcript has the tokens of a fresh Program (its state is not cleared: idle_program.h)."""
    import json
    import os
    import subprocess
    import sys

    code = f"""
import json, numpy as np, voxtral_native
t = voxtral_native.Transcriber({str(tiny_stt_artifact)!r}, progress=None)
out = [t.transcribe({str(CLIP)!r}).tokens]
s = t.session()
rng = np.random.default_rng(0)
for _ in range(30):
    s.feed((0.1 * rng.standard_normal(16000)).astype(np.float32))
    s.drain()
s.flush()
del s
out += [t.transcribe({str(CLIP)!r}).tokens for _ in range(2)]
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "VOXTRAL_VERBOSE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [offline.tokens] * 3
    loads = [line for line in r.stderr.splitlines() if line.startswith("voxtral: loaded method ")]
    for method in ("encode", "decode"):
        assert sum(f"'{method}'" in line for line in loads) == 1, loads


def test_a_new_session_loads_its_methods_before_the_first_feed(tiny_stt_artifact):
    """session() returns a stream that is ready: the methods load (on XNNPACK: pack or look
    up their weights, allocate the plan) when it is made, so a live source's first chunk does
    not wait for them."""
    import os
    import subprocess
    import sys

    code = f"""
import sys, numpy as np, voxtral_native
t = voxtral_native.Transcriber({str(tiny_stt_artifact)!r}, progress=None)
s = t.session()
print("== made", file=sys.stderr, flush=True)
s.feed(np.zeros(16000, np.float32))
s.drain()
print("== fed", file=sys.stderr, flush=True)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "VOXTRAL_VERBOSE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith(("voxtral: loaded method ", "== "))]
    made = lines.index("== made")
    for method in ("encode", "decode"):
        assert sum(f"'{method}'" in line for line in lines[:made]) == 1, lines
    assert lines[made:] == ["== made", "== fed"], lines


def test_voxtral_profile_prints_time_per_method_and_shape(tiny_stt_artifact):
    """VOXTRAL_PROFILE=1: at exit, one line per method and first-input shape, with its calls;
    unset, nothing."""
    import os
    import re
    import subprocess
    import sys

    code = f"""
import voxtral_native
voxtral_native.Transcriber({str(tiny_stt_artifact)!r}, progress=None).transcribe({str(CLIP)!r})
"""
    env = {k: v for k, v in os.environ.items() if k != "VOXTRAL_PROFILE"}
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                        env={**env, "VOXTRAL_PROFILE": "1"})  # fmt: skip
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert on.returncode == 0 and off.returncode == 0, on.stderr[-2000:] + off.stderr[-2000:]
    assert "voxtral profile:" in on.stderr and "voxtral profile:" not in off.stderr
    rows = re.findall(r"^\s+[\d.]+\s+(\d+)\s+[\d.]+\s+(\w+) (\[[\d, ]*\])$", on.stderr, re.M)
    methods = {m for _, m, _ in rows}
    assert {"encode", "decode"} <= methods, on.stderr[-2000:]
    assert all(int(calls) >= 1 for calls, _, _ in rows)
    assert any(m == "decode" and shape.startswith("[1, ") for _, m, shape in rows)


def test_other_rates_dtypes_and_channels_are_converted(transcriber, clip_audio):
    import soxr

    at_48k = soxr.resample(clip_audio, 16000, 48000)
    stereo_int16 = (np.stack([at_48k, at_48k], axis=1) * 32767).astype(np.int16)
    result = transcriber.transcribe(stereo_int16, sample_rate=48000)
    assert len(result.tokens) == len(transcriber.transcribe(clip_audio, sample_rate=16000).tokens)


def test_a_file_in_another_format(transcriber, clip_audio, tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, clip_audio, 16000)
    assert transcriber.transcribe(path).tokens == transcriber.transcribe(clip_audio, sample_rate=16000).tokens


def test_silence_and_long_streams_keep_going(transcriber):
    """Neither silence nor the model's output ends a stream: one step per 80 ms."""
    session = transcriber.session()
    n = 0
    for _ in range(30):  # 30 s of silence
        session.feed(np.zeros(16000, np.float32))
        n += len(session.drain())
    # Every position whose 8 mel frames are final (a frame needs n_fft/2 = 200 samples of
    # look-ahead), after the 39-position prompt, gives one step.
    samples = 32 * 1280 + 30 * 16000
    complete_tokens = ((samples - 200) // 160 + 1) // 8
    assert n == complete_tokens - 39 + 1


# --- bad input: clear exceptions, never a crash --------------------------------------------

def test_bad_audio(transcriber, tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="empty"):
        transcriber.transcribe(np.zeros(0, np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="NaN or infinite"):
        transcriber.transcribe(np.array([0.1, np.nan], np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="NaN or infinite"):
        transcriber.session().feed(np.array([np.inf], np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="shape"):
        transcriber.transcribe(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="dtype"):
        transcriber.transcribe(np.array(["a", "b"]))
    with pytest.raises(errors.InvalidArgumentError, match="channels-first"):
        transcriber.transcribe(np.zeros((2, 16000), np.float32))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        transcriber.transcribe(tmp_path / "missing.wav")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    with pytest.raises(errors.InvalidArgumentError, match="not an audio file"):
        transcriber.transcribe(not_audio)


def test_feeding_after_flush_is_an_error(transcriber):
    session = transcriber.session()
    session.feed(np.zeros(1000, np.float32))
    session.flush()
    with pytest.raises(errors.StateError, match="after flush"):
        session.feed(np.zeros(10, np.float32))


def test_two_threads_in_one_native_session_get_an_error_not_a_race(tiny_stt_artifact, clip_audio):
    """libvoxtral's own guard (the Python Session has another): feed() releases the GIL, so
    two threads can be inside one native session at once. One of them must be refused,
    and every accepted sample must be counted once."""
    runner = voxtral_native.native().SttRunner.load(str(tiny_stt_artifact))
    session = runner.new_session()
    chunks = np.array_split(np.tile(clip_audio, 3), 300)
    accepted, refused, failures = [0, 0], [0, 0], []
    drained: list = []

    def feeder(i):
        for chunk in chunks:
            try:
                session.feed(chunk)
                accepted[i] += len(chunk)
            except errors.StateError as e:
                assert "in use by another thread" in str(e)
                refused[i] += 1
            except Exception as e:  # noqa: BLE001 - anything else is a failure of the guard
                failures.append(e)

    def reader():
        for _ in range(2000):
            drained.extend(session.drain())  # allowed beside feed()

    threads = [threading.Thread(target=feeder, args=(i,)) for i in (0, 1)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sum(refused) > 0  # the two feeders did meet
    assert session.samples_fed == sum(accepted)
    session.flush()
    drained.extend(session.drain())
    assert [p[2] for p in drained if p[1] >= 0] == list(range(session.steps))  # every step once, in order


@pytest.mark.parametrize("delay", [100, 1300, 2480])
def test_unsupported_delay(tiny_stt_artifact, delay):
    with pytest.raises(errors.InvalidArgumentError, match="unsupported delay .* from 80 to 1200, or 2400"):
        Transcriber(tiny_stt_artifact, delay_ms=delay)
    with pytest.raises(errors.InvalidArgumentError, match="unsupported delay"):
        voxtral_native.native().SttRunner.load(str(tiny_stt_artifact), delay)


@pytest.mark.parametrize("delay", [0, -80, 480.0, "480"])
def test_a_delay_that_is_not_a_positive_int(tiny_stt_artifact, delay):
    """0 means "the program's default" only inside libvoxtral; Python's default is None."""
    with pytest.raises(errors.InvalidArgumentError, match="delay_ms must be a positive number of ms"):
        Transcriber(tiny_stt_artifact, delay_ms=delay)


def test_every_supported_delay_loads(tiny_stt_artifact):
    for delay in [80, 480, 1200, 2400]:
        assert Transcriber(tiny_stt_artifact, delay_ms=delay).delay_ms == delay


def copy_artifact(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_broken_model_directories(tiny_stt_artifact, tmp_path):
    core = voxtral_native.native()
    with pytest.raises(FileNotFoundError):
        core.SttRunner.load(str(tmp_path / "nothing"))
    no_tok = copy_artifact(tiny_stt_artifact, tmp_path / "no-tokenizer")
    (no_tok / "tekken.json").unlink()
    with pytest.raises(FileNotFoundError, match="tekken.json"):
        core.SttRunner.load(str(no_tok))
    corrupt = copy_artifact(tiny_stt_artifact, tmp_path / "corrupt")
    data = (corrupt / "model.pte").read_bytes()
    (corrupt / "model.pte").write_bytes(data[: len(data) // 3])
    with pytest.raises(errors.VoxtralError):
        core.SttRunner.load(str(corrupt))
    not_stt = copy_artifact(tiny_stt_artifact, tmp_path / "not-stt")
    (not_stt / "model.pte").write_bytes((DATA / "tiny_linear.pte").read_bytes())
    with pytest.raises(errors.InvalidModelError, match="not a speech-to-text program"):
        core.SttRunner.load(str(not_stt))
    with pytest.raises(errors.NotFoundError, match="neither an exported model"):
        Transcriber(tmp_path)


def test_a_program_of_another_format_version_is_refused(tiny_stt_artifact, tmp_path):
    import torch
    from executorch.exir import to_edge_transform_and_lower

    future = copy_artifact(tiny_stt_artifact, tmp_path / "future")
    ep = torch.export.export(torch.nn.Identity(), (torch.zeros(1),))
    program = to_edge_transform_and_lower(ep, constant_methods={"format_version": 99, "model_kind": 1}).to_executorch()
    (future / "model.pte").write_bytes(program.buffer)
    with pytest.raises(errors.UnsupportedVersionError, match="version 99"):
        voxtral_native.native().SttRunner.load(str(future))


def test_a_checkpoint_directory_is_exported_on_first_use_and_cached(tiny_stt_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTRAL_NATIVE_CACHE", str(tmp_path / "cache"))
    lines: list[str] = []
    first = Transcriber(tiny_stt_dir, export_options={}, progress=lines.append)
    assert any("exporting" in line for line in lines)
    assert first.model_dir.parent.parent == tmp_path / "cache"
    lines.clear()
    second = Transcriber(tiny_stt_dir, export_options={}, progress=lines.append)
    assert second.model_dir == first.model_dir and lines == []  # reused, no second export


def test_an_unknown_model_name(tmp_path):
    with pytest.raises(errors.NotFoundError, match="not a directory"):
        Transcriber(str(tmp_path / "a" / "b" / "c"))


def run_cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "voxtral_native", *args], capture_output=True, text=True, timeout=600)


def test_cli_transcribe_json_stream_and_mic(tiny_stt_artifact, offline):
    import json

    r = run_cli("transcribe", "--model", str(tiny_stt_artifact), "--json", str(CLIP))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tokens"] == offline.tokens and out["text"] == offline.text
    r = run_cli("transcribe", "--model", str(tiny_stt_artifact), "--stream", str(CLIP))
    assert r.returncode == 0 and r.stdout.rstrip("\n") == offline.text
    r = run_cli("transcribe", "--model", str(tiny_stt_artifact), "--mic")
    assert r.returncode == 2 and "--mic" in r.stderr and "Traceback" not in r.stderr  # no device / no sounddevice here
    r = run_cli("transcribe", "--model", str(tiny_stt_artifact))
    assert r.returncode == 2 and "give AUDIO files" in r.stderr
