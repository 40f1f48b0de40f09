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

    def __init__(self, path):
        from torch._inductor.package import load_package

        first = load_package(str(path), "encode")
        self.metadata = first.get_metadata()
        names = self.metadata["voxtral.methods"].split(",")
        self.methods = {name: load_package(str(path), name) for name in names}
        self.specs = {name: json.loads(m.get_metadata()["voxtral.state"]) for name, m in self.methods.items()}
        self.state = {}
        for specs in self.specs.values():
            for s in specs:
                self.state.setdefault(s["name"], torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"])))

    def __call__(self, method: str, *inputs):
        states = tuple(self.state[s["name"]] for s in self.specs[method])
        return self.methods[method](tuple(inputs), states)


@pytest.fixture(scope="module")
def clip(tiny_stt_dir):
    return reference_request(tiny_stt_dir / "tekken.json", DATA / "speech_en_flite.wav")


def package_stream(package: Package, mel, prompt, chunking):
    return greedy_stream(
        lambda m, s: package("encode", m, s),
        lambda e, i, p: tuple(package("decode", e, i, p, DELAY)),
        mel, prompt, chunking,
    )  # fmt: skip


def test_package_matches_eager_chunk_by_chunk_and_step_by_step(tiny_stt_aoti_artifact, tiny_stt_dir, clip):
    prompt, mel = clip
    with torch.no_grad():
        ref_embeds, ref_logits, ref_tokens = eager_stream(load_stt(tiny_stt_dir, max_encoder_tokens=32), mel, prompt, [32])
    for chunking in ([1], [3, 1, 8, 32, 5]):  # a fresh session (zero state) per chunking
        embeds, logits, tokens = package_stream(Package(tiny_stt_aoti_artifact / "model.pt2"), mel, prompt, chunking)
        assert (embeds - ref_embeds).abs().max() < 1e-4
        assert (logits - ref_logits).abs().max() < 1e-4  # logits of the tiny model have std ~8
        assert tokens == ref_tokens


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


def test_aoti_export_takes_no_quantization_yet(tiny_stt_dir):
    with pytest.raises(ValueError, match="float weights only"):
        SttExportOptions(backend="aoti-cpu", quant="8da4w")
