"""voxtral-speak, the C++ command-line program (csrc/cli/voxtral_speak.cpp), as a C++ user
runs it: its WAV file holds bit for bit the samples of the Python module's TtsSession (both
are libvoxtral; this checks the program's streaming, its WAV writer and its options), and bad
usage is answered with a message and an exit code, never a crash.

The program comes from conftest's `native_build` CMake build tree (made once per run and
shared by the xdist workers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

TEXT = "Hello there. This is the tiny model speaking, for a test."
VOICE = "casual_male"
SEED = 7
MAX_FRAMES = 40
UINT64_MAX = 2**64 - 1


@pytest.fixture(scope="module")
def speak(native_build):
    """speak(*args, stdin=None) -> the finished voxtral-speak process (its output decoded)."""
    exe = native_build / "csrc" / "voxtral-speak"
    assert exe.is_file(), f"{exe} was not built"

    def run(*args, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
        # bytes in (text that is not UTF-8 is a case to test), text out
        data = stdin.encode() if isinstance(stdin, str) else stdin
        r = subprocess.run([str(exe), *map(str, args)], capture_output=True, input=data, timeout=600)
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                           r.stderr.decode(errors="replace"))  # fmt: skip

    return run


def session_samples(artifact: Path, text: str, voice: str, seed: int, max_frames: int) -> np.ndarray:
    """The request's audio as the Python module gives it: next() chunks until done, joined."""
    from voxtral_native._core import TtsRunner

    session = TtsRunner.load(str(artifact)).new_session(text, voice, seed, max_frames)
    chunks, at = [], 0
    while not session.done:
        samples, first_sample, _last = session.next()
        assert first_sample == at  # the chunks tile the audio
        chunks.append(samples)
        at += len(samples)
    return np.concatenate(chunks)


def read_float_wav(path: Path) -> np.ndarray:
    import soundfile as sf

    info = sf.info(str(path))
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "FLOAT", 1, 24000)
    samples, _ = sf.read(str(path), dtype="float32")
    # The RIFF sizes were patched at the end: they describe the file as it is.
    raw = path.read_bytes()
    assert int.from_bytes(raw[4:8], "little") == len(raw) - 8
    return samples


def assert_same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def assert_clean_failure(r: subprocess.CompletedProcess, code: int) -> None:
    """Exit code `code` with a message: no signal (an abort is -6), no Python in sight."""
    assert r.returncode == code, f"rc {r.returncode}\n{r.stderr[-3000:]}"
    assert "voxtral-speak:" in r.stderr
    assert "Traceback" not in r.stderr and "terminate called" not in r.stderr and "Abort" not in r.stderr


def test_wav_holds_the_python_sessions_samples_bit_for_bit(speak, tiny_tts_artifact, tmp_path):
    expected = session_samples(tiny_tts_artifact, TEXT, VOICE, SEED, MAX_FRAMES)
    assert len(expected) == MAX_FRAMES * 1920  # the limit was reached: several chunks streamed
    out = tmp_path / "out.wav"
    r = speak(tiny_tts_artifact, TEXT, out, "--voice", VOICE, "--seed", SEED, "--max-frames", MAX_FRAMES)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == ""  # stdout stays free; the summary goes to stderr
    assert f"{MAX_FRAMES} frames" in r.stderr
    assert_same_bits(read_float_wav(out), expected)

    # the same text from stdin, options in the --name=value form
    piped = tmp_path / "piped.wav"
    r = speak(tiny_tts_artifact, "-", piped, f"--voice={VOICE}", f"--seed={SEED}", f"--max-frames={MAX_FRAMES}",
              "--threads", 1, stdin=TEXT)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_bits(read_float_wav(piped), expected)


def test_seed_takes_the_full_unsigned_64_bit_range(speak, tiny_tts_artifact, tmp_path):
    out = tmp_path / "max_seed.wav"
    r = speak(tiny_tts_artifact, TEXT, out, "--voice", VOICE, "--seed", UINT64_MAX, "--max-frames", 6)
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_bits(read_float_wav(out), session_samples(tiny_tts_artifact, TEXT, VOICE, UINT64_MAX, 6))


def test_list_voices(speak, tiny_tts_artifact):
    from voxtral_native._core import TtsRunner

    runner = TtsRunner.load(str(tiny_tts_artifact))
    r = speak(tiny_tts_artifact, "--list-voices")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines() == runner.voices
    assert f"default: {runner.default_voice}" in r.stderr


def test_unknown_voice_lists_the_voices_and_writes_nothing(speak, tiny_tts_artifact, tmp_path):
    from voxtral_native._core import TtsRunner

    out = tmp_path / "never.wav"
    r = speak(tiny_tts_artifact, TEXT, out, "--voice", "nobody_at_all")
    assert_clean_failure(r, 1)
    assert "nobody_at_all" in r.stderr
    assert all(v in r.stderr for v in TtsRunner.load(str(tiny_tts_artifact)).voices)
    assert not out.exists()  # the request is checked before the file is created


def test_missing_model_directory(speak, tmp_path):
    r = speak(tmp_path / "no_such_model", TEXT, tmp_path / "out.wav")
    assert_clean_failure(r, 1)
    assert "NotFound" in r.stderr and "no_such_model" in r.stderr


def test_runtime_errors_exit_1(speak, tiny_tts_artifact, tmp_path):
    # whitespace-only text (from stdin too): nothing to say
    assert_clean_failure(speak(tiny_tts_artifact, "  \n ", tmp_path / "a.wav"), 1)
    assert_clean_failure(speak(tiny_tts_artifact, "-", tmp_path / "b.wav", stdin=" \t"), 1)
    # text that is not UTF-8 (only stdin can carry it here)
    r = speak(tiny_tts_artifact, "-", tmp_path / "c.wav", stdin=b"caf\xe9 au lait")
    assert_clean_failure(r, 1)
    assert "InvalidArgument" in r.stderr and not (tmp_path / "c.wav").exists()
    assert "not valid UTF-8 (at byte 3)" in r.stderr and "encode_bytes" not in r.stderr  # the TTS user's terms
    # an output file that cannot be created
    r = speak(tiny_tts_artifact, TEXT, tmp_path / "missing_dir" / "out.wav", "--max-frames", 2)
    assert_clean_failure(r, 1)
    assert "IoError" in r.stderr and "missing_dir" in r.stderr


BAD_SEEDS = ["-1", "-0", "abc", "12x", "+5", " 5", "1e3", "", str(2**64), "99999999999999999999999"]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_bad_seed_is_bad_usage(speak, tiny_tts_artifact, tmp_path, seed):
    out = tmp_path / "out.wav"
    r = speak(tiny_tts_artifact, TEXT, out, "--seed", seed)
    assert_clean_failure(r, 2)
    assert "--seed" in r.stderr and "usage:" in r.stderr
    if seed.startswith("-"):
        assert "negative" in r.stderr
    if seed.isdigit():
        assert "too large" in r.stderr and str(UINT64_MAX) in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        [],  # nothing at all
        ["MODEL"],  # no text, no output
        ["MODEL", TEXT],  # no output
        ["MODEL", TEXT, "out.wav", "extra"],
        ["MODEL", TEXT, "out.wav", "--voice"],  # option without its value
        ["MODEL", TEXT, "out.wav", "--speed", "2"],  # unknown option
        ["MODEL", TEXT, "out.wav", "--max-frames", "-1"],
        ["MODEL", TEXT, "out.wav", "--threads", "0"],
        ["MODEL", TEXT, "out.wav", "--threads", "100000"],
        ["MODEL", TEXT, "out.wav", "--list-voices"],  # --list-voices takes the model only
    ],
)
def test_bad_usage_exits_2(speak, tiny_tts_artifact, tmp_path, args):
    args = [tiny_tts_artifact if a == "MODEL" else tmp_path / a if a == "out.wav" else a for a in args]
    r = speak(*args)
    assert r.returncode == 2, f"rc {r.returncode}\n{r.stderr[-3000:]}"
    assert "usage: voxtral-speak" in r.stderr
    assert "Traceback" not in r.stderr and "terminate called" not in r.stderr
    assert not (tmp_path / "out.wav").exists()


def test_help_exits_0(speak):
    r = speak("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: voxtral-speak")
