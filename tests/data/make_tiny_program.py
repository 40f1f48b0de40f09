"""Writes tests/data/tiny_linear.pte, the C++ unit tests' program fixture.

y = x @ W^T + b with W[i][j] = (i - j) / 8 and b[i] = i / 4 (exact in binary floating
point, so the C++ test recomputes the expected values itself), x of shape [2, 4],
lowered to XNNPACK, plus two constant methods (format_version = 1, scale = 0.25).
Run with the [export] extra: python tests/data/make_tiny_program.py
"""

from pathlib import Path

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower


class TinyLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        i = torch.arange(4, dtype=torch.float32)
        with torch.no_grad():
            self.linear.weight.copy_((i[:, None] - i[None, :]) / 8)
            self.linear.bias.copy_(i / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def main() -> None:
    model = TinyLinear().eval()
    with torch.no_grad():
        exported = torch.export.export(model, (torch.zeros(2, 4),))
    program = to_edge_transform_and_lower(
        exported,
        partitioner=[XnnpackPartitioner()],
        constant_methods={"format_version": 1, "scale": 0.25},
    ).to_executorch()
    out = Path(__file__).with_name("tiny_linear.pte")
    out.write_bytes(program.buffer)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
