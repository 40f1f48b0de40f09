"""`voxtral-native speak`: text from the argument or stdin into a file, raw PCM on stdout or the
speakers, the same samples as Synthesizer; bad input is a clear message and exit code 2."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from voxtral_native import Synthesizer
from voxtral_native.cli import main

TEXT = "Speak this, please."


@pytest.fixture(scope="module")
def synth(tiny_tts_artifact):
    return Synthesizer(tiny_tts_artifact, progress=lambda _: None)


def speak(*args: str, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "voxtral_native", "speak", *args],
                          input=None if stdin is None else stdin.encode(),
                          capture_output=True, timeout=600)  # fmt: skip


def test_a_file_holds_synthesize_samples_exactly(tiny_tts_artifact, synth, tmp_path):
    out = tmp_path / "out.wav"
    r = speak("--model", str(tiny_tts_artifact), TEXT, "-o", str(out), "--seed", "7", "--max-frames", "9", "--stream")
    assert r.returncode == 0, r.stderr.decode()
    data, rate = sf.read(out, dtype="float32")
    assert rate == 24000 and np.array_equal(data, synth.synthesize(TEXT, seed=7, max_frames=9))
    assert r.stderr.decode().count("s of audio") == 3  # --stream: one line per chunk (5 + 4 frames) + "wrote"


def test_text_from_stdin_and_raw_pcm_on_stdout(tiny_tts_artifact, synth):
    r = speak("--model", str(tiny_tts_artifact), "-o", "-", "--max-frames", "6", "--voice", synth.voices[-1],
              stdin=TEXT)  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    expected = synth.synthesize(TEXT, voice=synth.voices[-1], max_frames=6)
    pcm = np.frombuffer(r.stdout, "<i2")
    assert pcm.size == expected.size == 6 * 1920
    assert np.array_equal(pcm, (np.clip(expected, -1, 1) * 32767).round().astype("<i2"))


def test_list_voices_marks_the_default(tiny_tts_artifact, synth):
    r = speak("--model", str(tiny_tts_artifact), "--list-voices")
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and [line.split()[0] for line in lines] == synth.voices
    assert [line for line in lines if "(default)" in line] == [f"{synth.default_voice}  (default)"]


class FakeOutputStream:
    """sounddevice.OutputStream as the CLI uses it: a context manager with write()."""

    written: list[np.ndarray] = []

    def __init__(self, channels, samplerate, dtype):
        assert (channels, samplerate, dtype) == (1, 24000, "float32")
        self.open = False

    def __enter__(self):
        self.open = True
        return self

    def __exit__(self, *exc):
        self.open = False

    def write(self, chunk):
        assert self.open
        FakeOutputStream.written.append(np.array(chunk))


def test_play_writes_each_chunk_to_the_output_stream(tiny_tts_artifact, synth, monkeypatch, capsys):
    fake = types.SimpleNamespace(OutputStream=FakeOutputStream, check_output_settings=lambda **kw: None)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    FakeOutputStream.written = []
    assert main(["speak", "--model", str(tiny_tts_artifact), TEXT, "--play", "--max-frames", "31", "--seed", "2"]) == 0
    chunks = FakeOutputStream.written
    assert [c.size // 1920 for c in chunks] == [5, 25, 1]  # played as it streams, not at the end
    assert np.array_equal(np.concatenate(chunks), synth.synthesize(TEXT, seed=2, max_frames=31))


def test_play_without_sounddevice_or_a_device(tiny_tts_artifact, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    assert main(["speak", "--model", str(tiny_tts_artifact), TEXT, "--play"]) == 2
    assert "--play needs sounddevice" in capsys.readouterr().err

    def no_device(**kw):
        raise ValueError("No output device matching ''")  # what sounddevice raises without a default device

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(check_output_settings=no_device))
    assert main(["speak", "--model", str(tiny_tts_artifact), TEXT, "--play"]) == 2
    assert "--play: no usable output device" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--voice", "nobody", "-o", "x.wav"], "unknown voice 'nobody'"),
    (["-o", "x.wav", "--seed", "-1"], "seed"),
    (["-o", "x.wav", "--max-frames", "0"], "max_frames"),
    ([], "give -o FILE"),
    (["-o", "no/such/dir/x.wav"], "cannot write audio"),
    (["-o", "x.unknownformat"], "cannot write audio"),
])  # fmt: skip
def test_bad_input_is_a_message_not_a_traceback(tiny_tts_artifact, tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "voxtral_native", "speak", "--model", str(tiny_tts_artifact), TEXT,
                        *args], capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "x.wav").exists()  # bad input fails before a file is created


def test_empty_stdin_and_whitespace(tiny_tts_artifact):
    r = speak("--model", str(tiny_tts_artifact), "-o", "-", stdin="  \n")
    assert r.returncode == 2 and b"empty" in r.stderr and b"Traceback" not in r.stderr
