"""libvoxtral's floors: runtime/ (programs, artifacts, threads) is the ground floor, under
the models (stt/, and tts/ next). It must not reach up: no umbrella header, no model code."""

from __future__ import annotations

import re
from pathlib import Path

CSRC = Path(__file__).parents[2] / "csrc"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# What a runtime/ file may include of the project's own headers.
ALLOWED = re.compile(r"^(runtime/|text/json\.h$|voxtral/(export|status|program|runtime)\.h$)")


def test_runtime_includes_only_the_ground_floor():
    files = sorted((CSRC / "runtime").glob("*.[ch]*"))
    assert files
    bad = [(f.name, inc) for f in files for inc in INCLUDE.findall(f.read_text()) if not ALLOWED.match(inc)]
    assert bad == []
