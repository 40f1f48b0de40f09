"""The ``voxtral-native`` command.

Subcommands import what they need when they run, so ``--help`` and ``--version`` stay
fast and never import torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxtral_native import VoxtralError, __version__


def _make_checkpoint(args: argparse.Namespace) -> int:
    from voxtral_native.make_checkpoint import make_checkpoint

    out = make_checkpoint(args.model, args.size, Path(args.out_dir), seed=args.seed, progress=print)
    print(f"wrote a random-weight {args.size} {args.model} checkpoint to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        if args.model == "stt":
            from voxtral_native.export.export_stt import SttExportOptions as Options, export_stt as export
        else:
            from voxtral_native.export.export_tts import TtsExportOptions as Options, export_tts as export
    except ImportError as e:
        raise VoxtralError(f"exporting needs the [export] extra (pip install 'voxtral-native[export]'): {e}") from e

    common = ("checkpoint", "out", "model", "command", "run", "cmake_dir")
    options = Options(**{k: v for k, v in vars(args).items() if k not in common})
    export(Path(args.checkpoint), Path(args.out), options, progress=print)
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    import json

    from voxtral_native.transcriber import Transcriber

    log = (lambda line: print(line, file=sys.stderr)) if not args.json else (lambda line: None)
    transcriber = Transcriber(args.model, delay_ms=args.delay_ms, threads=args.threads, progress=log)
    if args.mic:
        return _transcribe_microphone(transcriber)
    if not args.audio:
        raise VoxtralError("give AUDIO files to transcribe, or --mic")
    for path in args.audio:
        if args.stream and not args.json:
            from voxtral_native.audio import load_audio

            samples = load_audio(path, None, transcriber.sample_rate)
            chunk = transcriber.sample_rate // 10  # 100 ms, as a live source would deliver
            for piece in transcriber.stream(samples[i : i + chunk] for i in range(0, len(samples), chunk)):
                print(piece, end="", flush=True)
            print()
            continue
        result = transcriber.transcribe(path)
        if args.json:
            print(json.dumps({
                "file": str(path), "text": result.text, "tokens": result.tokens,
                "words": [{"text": w.text, "start": round(w.start_s, 3), "end": round(w.end_s, 3)} for w in result.words],
            }, ensure_ascii=False))  # fmt: skip
        else:
            print(result.text)
    return 0


def _sounddevice(flag: str, direction: str, sample_rate: int):
    """sounddevice, checked to have a mono float32 `direction` ("input" / "output") device at
    `sample_rate`; a clear error (never PortAudio's traceback) where there is none."""
    try:
        import sounddevice
    except ImportError as e:
        raise VoxtralError(f"{flag} needs sounddevice (pip install 'voxtral-native[audio]'): {e}") from None
    except OSError as e:  # the PortAudio library is missing
        raise VoxtralError(f"{flag}: no audio {direction} available ({e})") from None
    check = sounddevice.check_input_settings if direction == "input" else sounddevice.check_output_settings
    try:
        check(channels=1, samplerate=sample_rate, dtype="float32")
    except Exception as e:  # PortAudioError, or ValueError for "no default device"
        raise VoxtralError(f"{flag}: no usable {direction} device ({e})") from None
    return sounddevice


def _transcribe_microphone(transcriber) -> int:
    sounddevice = _sounddevice("--mic", "input", transcriber.sample_rate)
    import queue

    blocks: queue.Queue = queue.Queue()
    session = transcriber.session()
    print("listening (Ctrl-C to stop)", file=sys.stderr)
    with sounddevice.InputStream(channels=1, samplerate=transcriber.sample_rate, dtype="float32",
                                 blocksize=transcriber.sample_rate // 10,
                                 callback=lambda data, *_: blocks.put(data[:, 0].copy())):
        try:
            while True:
                session.feed(blocks.get())
                for piece in session.drain():
                    print(piece.text, end="", flush=True)
        except KeyboardInterrupt:
            pass
    for piece in session.flush():
        print(piece.text, end="", flush=True)
    print()
    return 0


def _speak(args: argparse.Namespace) -> int:
    from voxtral_native.synthesizer import Synthesizer

    synthesizer = Synthesizer(args.model, threads=args.threads, progress=lambda line: print(line, file=sys.stderr))
    if args.list_voices:
        for name in synthesizer.voices:
            print(f"{name}{'  (default)' if name == synthesizer.default_voice else ''}")
        return 0
    text = _speak_text(args.text)
    if args.out is None and not args.play:
        raise VoxtralError("give -o FILE (or -o - for raw PCM on stdout) or --play")
    # Bad text, voice, seed or frame count fail here, before a file is created or a device opened.
    session = synthesizer.session(text, args.voice, args.seed, args.max_frames, temperature=args.temperature)
    import contextlib
    import time

    with contextlib.ExitStack() as cleanup:
        player = cleanup.enter_context(_open_player(synthesizer.sample_rate)) if args.play else None
        sink = cleanup.enter_context(_open_sink(args.out, synthesizer.sample_rate)) if args.out is not None else None
        start, seconds = time.monotonic(), 0.0
        for chunk in session:
            seconds += len(chunk) / synthesizer.sample_rate
            if args.stream:
                print(f"{time.monotonic() - start:7.2f} s: {seconds:6.2f} s of audio", file=sys.stderr, flush=True)
            if sink is not None:
                sink.write(chunk)
            if player is not None:
                player.write(chunk)  # blocks while the device's buffer is full
    if args.out not in (None, "-"):
        print(f"wrote {seconds:.2f} s of audio to {args.out}", file=sys.stderr)
    return 0


def _speak_text(text: str | None) -> str:
    """The text argument, or stdin when it is absent or '-' (a terminal would wait forever)."""
    if text is not None and text != "-":
        return text
    if sys.stdin is None or sys.stdin.isatty():
        raise VoxtralError("give the TEXT to speak, or pipe it on stdin")
    return sys.stdin.read()


def _open_player(sample_rate: int):
    """A started sounddevice output stream (a context manager that stops and closes it)."""
    sounddevice = _sounddevice("--play", "output", sample_rate)
    return sounddevice.OutputStream(channels=1, samplerate=sample_rate, dtype="float32")


class _PcmStdout:
    """Raw 16-bit little-endian PCM on stdout, flushed per chunk so a player on the pipe starts
    at once (e.g. `| aplay -f S16_LE -r 24000 -c 1`). Clipped here only, where 16 bits need it."""

    def write(self, chunk) -> None:
        import numpy as np

        sys.stdout.buffer.write((np.clip(chunk, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
        sys.stdout.buffer.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _open_sink(out: str, sample_rate: int):
    """Where -o sends the chunks: an audio file, or raw PCM on stdout for '-'."""
    if out == "-":
        return _PcmStdout()
    from voxtral_native.audio import AudioFileWriter

    return AudioFileWriter(out, sample_rate)


def _add_speak_parser(sub) -> None:
    sp = sub.add_parser(
        "speak",
        help="speak text into an audio file or the speakers (text-to-speech)",
        description="Synthesize speech with Voxtral-4B-TTS-2603. MODEL is an exported directory, a Mistral "
        "checkpoint directory (exported on first use and cached) or a Hugging Face repo id.",
    )
    sp.add_argument("text", nargs="?", metavar="TEXT", help="what to say (default, or '-': read stdin)")
    sp.add_argument("--model", default="mistralai/Voxtral-4B-TTS-2603", help="(default: %(default)s)")
    sp.add_argument("-o", "--out", metavar="FILE",
                    help="audio file (WAV, FLAC, OGG... from the suffix; float samples as synthesized), "
                         "or '-' for raw 16-bit PCM at 24 kHz on stdout")  # fmt: skip
    sp.add_argument("--voice", help="voice name (default: the model's; see --list-voices)")
    sp.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same audio (default: 42)")
    sp.add_argument("--temperature", type=float, default=0.0,
                    help="sample the semantic codes at this temperature (default: 0, greedy)")
    sp.add_argument("--max-frames", type=int, default=None, help="stop after this many 80 ms frames")
    sp.add_argument("--stream", action="store_true", help="report each audio chunk on stderr as it is synthesized")
    sp.add_argument("--play", action="store_true", help="play the audio as it streams (needs sounddevice)")
    sp.add_argument("--list-voices", action="store_true", help="print the model's voices and exit")
    sp.add_argument("--threads", type=int, default=None, help="runtime threads (default: one per core)")
    sp.set_defaults(run=_speak)


def _serve(args: argparse.Namespace) -> int:
    from voxtral_native.server import ServerConfig, serve
    from voxtral_native.server.config import API_KEY_ENV, MiB

    if args.stt is None and args.tts is None:
        raise VoxtralError("give --stt MODEL, --tts MODEL or both")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise VoxtralError(f"serving needs the [server] extra (pip install 'voxtral-native[server]'): {e}") from None
    config = ServerConfig(
        stt=args.stt, tts=args.tts, host=args.host, port=args.port, api_key=args.api_key,
        cors_origins=args.cors_origin or [],
        memory_budget_bytes=None if args.memory_budget_mb is None else args.memory_budget_mb * MiB,
        max_sessions=args.max_sessions, max_upload_bytes=args.max_upload_mb * MiB, idle_timeout_s=args.idle_timeout,
        max_speech_seconds=args.max_speech_seconds,
        delay_ms=args.delay_ms, threads=args.threads,
    )  # fmt: skip
    if config.resolved_api_key() is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without an API key (--api-key or {API_KEY_ENV})", file=sys.stderr)
    serve(config)
    return 0


def _add_serve_parser(sub) -> None:
    from voxtral_native.server.config import API_KEY_ENV

    sv = sub.add_parser(
        "serve",
        help="serve the models over an OpenAI-compatible HTTP API and a web page (needs [server])",
        description="Serve speech-to-text (POST /v1/audio/transcriptions, WS /v1/realtime) and text-to-speech "
        "(POST /v1/audio/speech) as OpenAI's API does, with a live web page at /. Each model is loaded once. "
        "MODEL is an exported directory, a Mistral checkpoint directory or a Hugging Face repo id.",
    )
    sv.add_argument("--stt", metavar="MODEL", help="speech-to-text model (Voxtral-Mini-4B-Realtime-2602)")
    sv.add_argument("--tts", metavar="MODEL", help="text-to-speech model (Voxtral-4B-TTS-2603)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    sv.add_argument("--api-key", default=None,
                    help=f"require 'Authorization: Bearer KEY' on every API route and the WebSocket "
                         f"(default: ${API_KEY_ENV} if set, else no key)")  # fmt: skip
    sv.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                    help="allow browser calls from this origin (repeatable; default: none)")  # fmt: skip
    sv.add_argument("--memory-budget-mb", type=int, default=None,
                    help="memory all live sessions may plan together; past it requests get 503 "
                         "(default: 80%% of the memory available after loading)")  # fmt: skip
    sv.add_argument("--max-sessions", type=int, default=None, help="cap on live sessions (default: memory alone)")
    sv.add_argument("--max-upload-mb", type=int, default=25, help="largest transcription upload (default: %(default)s)")
    sv.add_argument("--idle-timeout", type=float, default=60.0,
                    help="seconds a socket may send or read nothing before it is closed (default: %(default)s)")  # fmt: skip
    sv.add_argument("--max-speech-seconds", type=float, default=600.0,
                    help="most audio one speech request may produce (default: %(default)s)")  # fmt: skip
    sv.add_argument("--delay-ms", type=int, default=None, help="transcription delay (default: the model's)")
    sv.add_argument("--threads", type=int, default=None, help="runtime threads (default: one per core)")
    sv.set_defaults(run=_serve)


def _add_transcribe_parser(sub) -> None:
    tr = sub.add_parser(
        "transcribe",
        help="transcribe audio files or the microphone (speech-to-text)",
        description="Transcribe audio with Voxtral-Mini-4B-Realtime-2602. MODEL is an exported directory, a "
        "Mistral checkpoint directory (exported on first use and cached) or a Hugging Face repo id.",
    )
    tr.add_argument("audio", nargs="*", metavar="AUDIO", help="audio files (any format soundfile reads)")
    tr.add_argument("--model", default="mistralai/Voxtral-Mini-4B-Realtime-2602", help="(default: %(default)s)")
    tr.add_argument("--stream", action="store_true", help="print text as it is decoded")
    tr.add_argument("--mic", action="store_true", help="transcribe the microphone live (needs sounddevice)")
    tr.add_argument("--delay-ms", type=int, default=None,
                    help="text delay: 80..1200 in steps of 80, or 2400 (default: the model's, 480 for the released one)")
    tr.add_argument("--threads", type=int, default=None, help="runtime threads (default: one per core)")
    tr.add_argument("--json", action="store_true", help="one JSON object per file: text, tokens, words with times")
    tr.set_defaults(run=_transcribe)


def _add_export_parser(sub) -> None:
    ex = sub.add_parser(
        "export",
        help="export a Mistral checkpoint directory to a program for the runtime",
        description="Export a Mistral-format checkpoint directory to an artifact directory "
        "(model.pte, tekken.json, manifest.json; voices.f32 for tts).",
    )
    models = ex.add_subparsers(dest="model", metavar="MODEL", required=True)
    schemes = ("Quantization schemes: 4w, 8w, 8da4w, 8da8w for linear layers and 4w, 8w for the embedding table, "
               "each optionally ':GROUP' (group size; 0 = per channel; default 32 for 4-bit, 0 for 8-bit).")
    stt = models.add_parser("stt", help="Voxtral-Mini-4B-Realtime-2602 (speech-to-text)", description=schemes)
    tts = models.add_parser("tts", help="Voxtral-4B-TTS-2603 (text-to-speech)", description=schemes)
    for p in (stt, tts):
        p.add_argument("--checkpoint", required=True, metavar="DIR", help="Mistral checkpoint directory")
        p.add_argument("--out", required=True, metavar="DIR", help="artifact directory to write")
        p.add_argument("--backend", choices=["xnnpack", "portable", "cuda", "metal", "aoti-cpu"], default="xnnpack",
                       help="xnnpack / portable: ExecuTorch programs for the CPU; cuda, metal, aoti-cpu: "
                            "AOTInductor packages for libvoxtral's AOTI backend (needs torch; aoti-cpu is its "
                            "CPU test double) (default: xnnpack)")  # fmt: skip
        p.add_argument("--embedding-quant", metavar="SCHEME", help="token embedding table (default: none)")
        p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                       help="compute dtype of activations, KV caches and unquantized weights "
                            "(default: fp32, the fastest on CPU)")  # fmt: skip
        p.set_defaults(run=_export)
    stt.add_argument("--quant", metavar="SCHEME", help="decoder linear layers and output head (default: none)")
    stt.add_argument("--encoder-quant", metavar="SCHEME", help="encoder linear layers and adapter (default: none)")
    stt.add_argument("--max-encoder-tokens", type=int, default=32, help="80 ms audio tokens per encode call (default: 32)")
    stt.add_argument("--max-decoder-tokens", type=int, default=64, help="positions per decode call (default: 64)")
    tts.add_argument("--quant", metavar="SCHEME", help="LM linear layers (default: none)")
    tts.add_argument("--acoustic-quant", metavar="SCHEME",
                     help="acoustic transformer linear layers and the semantic head (default: none)")
    tts.add_argument("--codec-quant", metavar="SCHEME",
                     help="codec transformer linear layers; its convolutions stay float32 (default: none)")
    tts.add_argument("--max-positions", type=int, default=4096,
                     help="LM positions per utterance: prompt + one per 80 ms frame (default: 4096)")
    tts.add_argument("--max-prompt-tokens", type=int, default=512,
                     help="prompt tokens, voice rows included (default: 512)")
    tts.add_argument("--max-codec-frames", type=int, default=50,
                     help="frames per codec call, left context included (default: 50)")
    tts.add_argument("--bf16-edges", action="store_true",
                     help="bf16 float inputs and outputs (lm_input_is_bf16 = 1), for the GPU backend's staging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxtral-native",
        description="Run Mistral's Voxtral speech models (speech-to-text, text-to-speech) locally.",
    )
    parser.add_argument("--version", action="version", version=f"voxtral-native {__version__}")
    parser.add_argument(
        "--cmake-dir",
        action="store_true",
        help="print the directory of the installed CMake package (find_package(voxtral)) and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    mk = sub.add_parser(
        "make-checkpoint",
        help="write a random-weight checkpoint in Mistral's format (for tests and benchmarks)",
        description="Write a random-weight checkpoint directory in Mistral's own format "
        "(params.json, consolidated.safetensors in bf16, tekken.json; voice_embedding/ for tts) with the "
        "key names and shapes of the real models. 'tiny' is for tests, 'full' is the real size.",
    )
    mk.add_argument("model", choices=["stt", "tts"], help="stt: Voxtral-Mini-4B-Realtime-2602, tts: Voxtral-4B-TTS-2603")
    mk.add_argument("out_dir", metavar="OUT_DIR", help="directory to create")
    mk.add_argument("--size", choices=["tiny", "full"], default="tiny", help="model size (default: tiny)")
    mk.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same bytes (default: 0)")
    mk.set_defaults(run=_make_checkpoint)
    _add_transcribe_parser(sub)
    _add_speak_parser(sub)
    _add_export_parser(sub)
    _add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmake_dir:
        from voxtral_native import cmake_dir

        print(cmake_dir())
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (VoxtralError, ValueError, OSError) as e:
        print(f"voxtral-native {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
