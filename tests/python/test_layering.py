"""libvoxtral's floors: runtime/ (programs, artifacts, threads) and the backends wing under it
(backends/: one implementation of Program per runtime) are the ground floor, under the
models (stt/, tts/). It must not reach up: no umbrella header, no model code. And each
runtime's headers stay inside its backend's folder, so no other file depends on one."""

from __future__ import annotations

import re
from pathlib import Path

CSRC = Path(__file__).parents[2] / "csrc"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s+<([^>]+)>", re.M)
# What a ground-floor file may include of the project's own headers.
ALLOWED = re.compile(r"^(runtime/|backends/|text/json\.h$|voxtral/(export|status|program|runtime)\.h$)")
# Headers of each backend's runtime -> the folder that alone may include them.
RUNTIME_HEADERS = {
    re.compile(r"^executorch/"): "backends/executorch/",
    re.compile(r"^(torch|ATen|c10|caffe2)/"): "backends/aoti/",
}


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".cpp", ".h", ".inc"))


def test_ground_floor_includes_only_the_ground_floor():
    files = sources(CSRC / "runtime") + sources(CSRC / "backends")
    assert any(f.parent.name == "aoti" for f in files) and any(f.parent.name == "executorch" for f in files)
    bad = [(f.name, inc) for f in files for inc in INCLUDE.findall(f.read_text()) if not ALLOWED.match(inc)]
    assert bad == []


def test_runtime_headers_stay_in_their_backend():
    bad = []
    for f in sources(CSRC):
        rel = f.relative_to(CSRC).as_posix()
        for inc in SYSTEM_INCLUDE.findall(f.read_text()):
            for pattern, home in RUNTIME_HEADERS.items():
                if pattern.match(inc) and not rel.startswith(home):
                    bad.append((rel, inc))
    assert bad == []
