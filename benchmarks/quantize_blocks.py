"""The export's quantization of full-size linears: the whole matrix at once vs blocks of rows.

    python benchmarks/quantize_blocks.py [--scheme 8da4w:32] [--block-elements 1073741824,262144]

For each full-size shape (decoder w1 9216 x 3072, decoder w2 3072 x 9216, encoder w1 5120 x
1280), random bf16-valued weights are quantized by `quantize_module_` (torchao, HQQ scales)
with `quantize.BLOCK_ELEMENTS` set to each value in turn; a value above the matrix's size
quantizes it whole. Reports seconds per matrix and whether each result equals the first
value's bit for bit (every quantized tensor field compared).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", default="8da4w:32")
    ap.add_argument("--block-elements", default=f"{1 << 30},{1 << 18}")
    args = ap.parse_args()

    import torch
    from torch import nn

    from voxtral_native.export import quantize

    torch.manual_seed(0)
    scheme = quantize.QuantScheme.parse(args.scheme)
    for rows, cols in [(9216, 3072), (3072, 9216), (5120, 1280)]:
        weight = (0.02 * torch.randn(rows, cols)).to(torch.bfloat16).float()  # checkpoints hold bf16
        first = None
        for block in (int(b) for b in args.block_elements.split(",")):
            quantize.BLOCK_ELEMENTS = block
            holder = nn.Sequential(nn.Linear(cols, rows, bias=False))
            holder[0].weight = nn.Parameter(weight.clone(), requires_grad=False)
            start = time.perf_counter()
            quantize.quantize_module_(holder, scheme, nn.Linear)
            seconds = time.perf_counter() - start
            q = holder[0].weight
            fields = [getattr(q, name) for name in q.tensor_data_names]
            first = first or fields
            same = all(torch.equal(a, b) for a, b in zip(first, fields, strict=True))
            print(f"{rows} x {cols}  BLOCK_ELEMENTS {block:>10d}: {seconds:6.2f} s  identical to the first: {same}")


if __name__ == "__main__":
    main()
