"""The AOTInductor export (--backend aoti-cpu: the GPU backend's program format, compiled for
the CPU) against the eager model: each method is one model of the package, the mutable
buffers (ring KV caches, conv context) are inputs a session owns and that the methods update
in place, and the metadata travels in the package. Run here through PyTorch's own package
loader; libvoxtral's AOTI backend runs the same package from C++."""

from __future__ import annotations

import json

import pytest

import torch  # noqa: E402

from test_stt_export import DELAY, eager_stream, greedy_stream  # noqa: E402
from stt_reference import reference_request  # noqa: E402
from voxtral_native.export.checkpoint import load_stt  # noqa: E402
from voxtral_native.export.export_stt import SttExportOptions  # noqa: E402

DATA = __import__("pathlib").Path(__file__).parents[1] / "data"


class Package:
    """The package's methods, called as libvoxtral calls them: own inputs, then this
    session's state tensors (zeros at the start, one per state name)."""

    def __init__(self, path, device: str = "cpu"):
        from torch._inductor.package import load_package

        first = load_package(str(path), "encode")
        self.metadata = first.get_metadata()
        names = self.metadata["voxtral.methods"].split(",")
        self.methods = {name: load_package(str(path), name) for name in names}
        self.specs = {name: json.loads(m.get_metadata()["voxtral.state"]) for name, m in self.methods.items()}
        self.state = {}
        for specs in self.specs.values():
            for s in specs:
                self.state.setdefault(s["name"], torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"]), device=device))

    def __call__(self, method: str, *inputs):
        states = tuple(self.state[s["name"]] for s in self.specs[method])
        return self.methods[method](tuple(inputs), states)


@pytest.fixture(scope="module")
def clip(tiny_stt_dir):
    return reference_request(tiny_stt_dir / "tekken.json", DATA / "speech_en_flite.wav")


def package_stream(package: Package, mel, prompt, chunking):
    """As test_stt_export.greedy_stream; the package's decode returns the token alone (its
    argmax runs on the device), so the per-step logits come back empty."""

    def decode(e, i, p):
        (tokens,) = package("decode", e, i, p, DELAY)  # [1, min(T, 8)]
        return torch.zeros(1, 0), tokens[:, -1]

    return greedy_stream(lambda m, s: package("encode", m, s), decode, mel, prompt, chunking)


def test_package_matches_eager_chunk_by_chunk_and_step_by_step(tiny_stt_aoti_artifact, tiny_stt_dir, clip):
    prompt, mel = clip
    with torch.no_grad():
        ref_embeds, ref_logits, ref_tokens = eager_stream(load_stt(tiny_stt_dir, max_encoder_tokens=32), mel, prompt, [32])
    for chunking in ([1], [3, 1, 8, 32, 5]):  # a fresh session (zero state) per chunking
        embeds, _, tokens = package_stream(Package(tiny_stt_aoti_artifact / "model.pt2"), mel, prompt, chunking)
        assert (embeds - ref_embeds).abs().max() < 1e-4
        assert tokens == ref_tokens  # every step's argmax, each fed back: one wrong logit derails the rest


def test_state_belongs_to_the_session_and_metadata_travels(tiny_stt_aoti_artifact, clip):
    manifest = json.loads((tiny_stt_aoti_artifact / "manifest.json").read_text())
    assert manifest["backend"] == "aoti-cpu" and manifest["files"]["program"] == "model.pt2"
    a, b = Package(tiny_stt_aoti_artifact / "model.pt2"), Package(tiny_stt_aoti_artifact / "model.pt2")
    assert json.loads(a.metadata["voxtral.constants"]) == manifest["metadata"]
    # encode owns the encoder's caches and conv context, decode the decoder's: no name in both
    enc = {s["name"] for s in a.specs["encode"]}
    dec = {s["name"] for s in a.specs["decode"]}
    assert enc and dec and not enc & dec
    assert any("k_cache" in n for n in dec) and any("tail" in n for n in enc)
    prompt, mel = clip
    first = a("encode", mel[:, :, :8].contiguous(), torch.tensor([0]))
    assert any(t.abs().sum() > 0 for t in a.state.values())  # updated in place
    assert all(t.abs().sum() == 0 for t in b.state.values())  # the other session's state is untouched
    again = b("encode", mel[:, :, :8].contiguous(), torch.tensor([0]))
    assert torch.equal(first, again)


def test_aoti_export_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="takes 4w or 8w linears"):
        SttExportOptions(backend="aoti-cpu", quant="8da4w")
    with pytest.raises(ValueError, match="drop --embedding-quant"):
        SttExportOptions(backend="cuda", embedding_quant="8w")
    with pytest.raises(ValueError, match="group size of 32, 64, 128 or 256"):
        SttExportOptions(backend="cuda", quant="4w:16")


def test_a_method_name_that_begins_another_is_refused(tmp_path):
    """torch 2.11's package loader ran 'prefill_text/' for 'prefill' (gpu_graphs.md): refused
    before anything is compiled."""
    from voxtral_native.export.aoti import package_methods

    with pytest.raises(ValueError, match="'prefill_text' begins with 'prefill'"):
        package_methods({"prefill": None, "prefill_text": None}, {}, {}, tmp_path / "model.pt2")
    assert not (tmp_path / "model.pt2").exists()


@pytest.mark.parametrize("t", [1, 3, 4])
def test_masked_ring_attention_equals_the_reference(t):
    """ops.ring_sdpa_masked (the AOTI form: SDPA over every slot, masked by position, static
    shapes) against ring_sdpa_reference before, across and after the wrap, and with the
    window cutting off slots that still hold keys."""
    from voxtral_native.export.ops import ring_sdpa_masked, ring_sdpa_reference

    g = torch.Generator().manual_seed(t)
    window, slots = 6, 6 + 4 - 1
    k, v = torch.randn(1, 2, slots, 8, generator=g), torch.randn(1, 2, slots, 8, generator=g)
    for start in (0, 1, 5, slots - t, slots - 1, slots, 2 * slots + 3):
        q = torch.randn(1, t, 4, 8, generator=g)
        pos = torch.tensor([start])
        got, want = ring_sdpa_masked(q, k, v, pos, window), ring_sdpa_reference(q, k, v, pos, window)
        assert (got - want).abs().max() < 1e-5, start


def test_tinygemm_int4_linear_is_its_affine_dequantization():
    """TinyGemmInt4Linear: each group's min-max affine fit (error at most half a step), and
    PyTorch's int4 kernel computes x @ dequantized.T (bf16 activations: rounding of ~1e-2)."""
    from voxtral_native.export.quantize import TinyGemmInt4Linear

    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(256, 48, bias=True)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 256, generator=g))
    q, sz = TinyGemmInt4Linear.quantize(linear.weight, 32)
    scale, zero = sz[..., 0].t().repeat_interleave(32, 1), sz[..., 1].t().repeat_interleave(32, 1)  # [N, K]
    dequantized = (q - 8) * scale + zero
    assert q.min() >= 0 and q.max() <= 15
    assert ((dequantized - linear.weight).abs() <= scale / 2 + 1e-6).all()
    layer = TinyGemmInt4Linear.from_linear(linear, 32, "cpu")
    x = torch.randn(5, 256, generator=g)
    bf16_scale, bf16_zero = (s.to(torch.bfloat16).float() for s in (scale, zero))
    want = x.to(torch.bfloat16).float() @ ((q - 8) * bf16_scale + bf16_zero).t() + linear.bias
    got = layer(x)
    assert got.dtype == torch.float32 and got.shape == (5, 48)
    assert ((got - want).abs().max() / want.abs().max()) < 1e-2


@pytest.fixture(scope="module")
def tiny_stt_aoti_4w(tiny_stt_dir, tmp_path_factory, worker_id):
    from conftest import made_once

    from voxtral_native.export.export_stt import export_stt

    options = SttExportOptions(backend="aoti-cpu", quant="4w:32", encoder_quant="4w:32")
    return made_once(tmp_path_factory, worker_id, "stt-aoti-cpu-4w",
                     lambda out: export_stt(tiny_stt_dir, out, options, progress=lambda _: None))  # fmt: skip


def test_int4_package_matches_the_eager_int4_model(tiny_stt_aoti_4w, tiny_stt_dir, clip):
    """--backend aoti-cpu --quant 4w: linears on PyTorch's int4 kernels inside the package,
    against the same quantization run eagerly."""
    from voxtral_native.export.quantize import QuantScheme, TinyGemmInt4Linear, quantizer

    s = QuantScheme.parse("4w:32")
    model = load_stt(tiny_stt_dir, max_encoder_tokens=32, on_module_loaded=quantizer(s, s, None, tinygemm_device="cpu"))
    assert sum(isinstance(m, TinyGemmInt4Linear) for m in model.modules()) > 10
    prompt, mel = clip
    with torch.no_grad():
        ref_embeds, _, ref_tokens = eager_stream(model, mel, prompt, [32])
    embeds, _, tokens = package_stream(Package(tiny_stt_aoti_4w / "model.pt2"), mel, prompt, [3, 1, 8])
    assert (embeds - ref_embeds).abs().max() < 1e-2 * ref_embeds.abs().max()  # bf16 activations in the linears
    assert tokens == ref_tokens
