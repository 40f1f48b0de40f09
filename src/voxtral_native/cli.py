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
