"""Here: one encoder layer's o-projection and SwiGLU linears per scheme (benchmarks/linear_kernels.build;
the q/k/v ones left out to fit the device tool's 64 MiB) for dev_linears.py."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import linear_kernels
linear_kernels.PARTS["encoder"] = [(2048, 1280), (1280, 5120), (1280, 5120), (5120, 1280)]
out = Path(__file__).parent / "linears"; out.mkdir(exist_ok=True)
for scheme in ("8da4w:32", "8da8w:0"):
    print(scheme, linear_kernels.build("encoder", 1, scheme, out / f"encoder_{scheme.replace(':', '_')}.pte"))
