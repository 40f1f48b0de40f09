"""Export time with XNNPACK's preprocess passes gated (the export's default: a pass runs only
on partitions with the ops it rewrites) against all 17 passes on every partition; the two
programs must be the same bytes.

    python benchmarks/export_pass_gates.py stt CHECKPOINT_DIR [--quant 8da4w --encoder-quant 8da8w ...]
    python benchmarks/export_pass_gates.py tts CHECKPOINT_DIR [--quant 8da4w --acoustic-quant 8da8w ...]

Runs each export in a process of its own (gated first), one after the other, and prints
each one's seconds and md5. The options after the checkpoint are `voxtral-native export`'s.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_EXPORT = """
import contextlib, sys
from voxtral_native import cli
from voxtral_native.export import export_stt
if sys.argv[1] == "all":
    export_stt._xnnpack_skips_passes_without_targets = contextlib.nullcontext
sys.exit(cli.main(sys.argv[2:]))
"""


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("stt", "tts"):
        sys.exit(__doc__)
    kind, checkpoint, options = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        digests = {}
        for passes in ("gated", "all"):
            out = Path(tmp) / passes
            start = time.monotonic()
            cmd = ["export", kind, "--checkpoint", checkpoint, "--out", str(out), *options]
            r = subprocess.run([sys.executable, "-c", ONE_EXPORT, passes, *cmd], capture_output=True, text=True)
            if r.returncode != 0:  # the export's own message, not a CalledProcessError traceback
                sys.exit(f"{kind} export with {passes} passes failed:\n{r.stderr[-3000:]}")
            digests[passes] = hashlib.md5((out / "model.pte").read_bytes()).hexdigest()
            print(f"{kind} {passes:5s} passes: {time.monotonic() - start:7.1f} s  md5 {digests[passes]}")
        print("same bytes:", digests["gated"] == digests["all"])


if __name__ == "__main__":
    main()
