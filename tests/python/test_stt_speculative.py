"""Speculative decoding through runs (csrc/stt/session.cpp, decode_some): inside a run of
one token ([STREAMING_PAD] above all) one decode call over k positions guesses that the run
goes on, keeps the outputs up to the first that breaks it and decodes the rest again. The
tokens must be exactly those of one step per call, rollbacks across the ring wrap included.

Two levels: the runner (tokens with speculation on and off, offline and streamed; the tiny
random model repeats one token, so its guesses hold and calls drop), and the program
(rollback: a call over k positions with wrong guesses, then the next step from the first of
them, gives the logits of plain stepping at every position, past several ring wraps: a
stale slot that the position mask let through would change them). Random weights never make
the PAD runs of a real model: benchmarks/stt_speculative.py measures speed against the
acceptance rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import made_once
from stt_reference import reference_request
from test_stt_export import DELAY, MEL_PER_TOKEN, load_methods, small_window_checkpoint  # noqa: F401  (fixture)

import voxtral_native
from voxtral_native.export.checkpoint import load_stt
from voxtral_native.export.export_stt import SttExportOptions, export_stt

DATA = Path(__file__).parents[1] / "data"
CLIP = DATA / "speech_en_flite.wav"
MAX_DECODER_TOKENS = 40
RING = 12 + MAX_DECODER_TOKENS - 1  # decoder ring slots of the small-window export


@pytest.fixture(scope="module")
def small_window_artifact(small_window_checkpoint, tmp_path_factory, worker_id):  # noqa: F811
    def export(out: Path) -> None:
        export_stt(small_window_checkpoint, out, SttExportOptions(max_decoder_tokens=MAX_DECODER_TOKENS),
                   progress=lambda _: None)  # fmt: skip

    return made_once(tmp_path_factory, worker_id, "stt-small-window-art", export)


def long_clip() -> tuple[np.ndarray, int]:
    audio, rate = sf.read(str(CLIP), dtype="float32")
    return np.concatenate([audio, audio, audio]), rate


def run(transcriber, audio, rate, chunk: int | None):
    s = transcriber.session()
    for i in range(0, len(audio), chunk or len(audio)):
        s.feed(audio[i : i + (chunk or len(audio))], sample_rate=rate)
    pieces = s.drain() + s.flush()
    return [p.token_id for p in pieces], s.decode_calls


def test_speculation_gives_the_one_step_tokens(small_window_artifact):
    plain = voxtral_native.Transcriber(small_window_artifact, speculative_tokens=1)
    fast = voxtral_native.Transcriber(small_window_artifact)
    audio, rate = long_clip()
    want, plain_calls = run(plain, audio, rate, None)
    assert plain_calls == len(want)  # one call per token (the prefill's included)
    assert len(want) > 3 * RING  # the decoder ring wraps three times and more
    for chunk in (None, rate, rate // 10):  # offline; 1 s chunks (12 tokens waiting); 100 ms
        got, calls = run(fast, audio, rate, chunk)
        assert got == want, chunk
        if chunk != rate // 10:
            assert calls < 0.5 * plain_calls, (chunk, calls, plain_calls)  # runs in calls of 8
    assert fast.transcribe(audio, sample_rate=rate).tokens == want
    with pytest.raises(voxtral_native.InvalidArgumentError, match="speculative_tokens"):
        voxtral_native.Transcriber(small_window_artifact, speculative_tokens=0)


def test_batched_streams_give_the_same_tokens_in_fewer_calls(small_window_artifact):
    """latency_ms=240: a 100 ms stream gathers 4 tokens per encoder call, and the decoder
    steps them in one speculative call; the tokens and their steps are those of latency 0."""
    audio, rate = long_clip()
    want, calls0 = run(voxtral_native.Transcriber(small_window_artifact), audio, rate, rate // 10)
    batched = voxtral_native.Transcriber(small_window_artifact, latency_ms=240)
    got, calls4 = run(batched, audio, rate, rate // 10)
    assert got == want and calls4 < 0.5 * calls0, (calls4, calls0)
    with pytest.raises(voxtral_native.InvalidArgumentError, match="batch_tokens must be from 1"):
        voxtral_native.Transcriber(small_window_artifact, latency_ms=80 * 40)
    with pytest.raises(voxtral_native.InvalidArgumentError, match="latency_ms"):
        voxtral_native.Transcriber(small_window_artifact, latency_ms=-80)


def test_rollback_after_wrong_guesses_leaves_no_trace(small_window_artifact, small_window_checkpoint):  # noqa: F811
    """Program level, position by position past several wraps: plain steps, against a call
    over k positions with wrong guesses (a token the model never gave) followed by the
    step that redoes the first guessed position. Their logits must agree."""
    prompt, mel = reference_request(small_window_checkpoint / "tekken.json", CLIP)
    mel = torch.cat([mel, mel, mel], dim=2)
    n = mel.shape[2] // MEL_PER_TOKEN
    encode_a, decode_a = load_methods(small_window_artifact / "model.pte")
    _, decode_b = load_methods(small_window_artifact / "model.pte")
    embeds = torch.cat([encode_a.execute([mel[:, :, i * MEL_PER_TOKEN : (i + 1) * MEL_PER_TOKEN].contiguous(),
                                          torch.tensor([i])])[0] for i in range(n)], dim=1)  # fmt: skip
    p = len(prompt)
    ids = torch.tensor([prompt])
    logits_a, tokens_a = decode_a.execute([embeds[:, :p].contiguous(), ids, torch.tensor([0]), DELAY])
    logits_b, _ = decode_b.execute([embeds[:, :p].contiguous(), ids, torch.tensor([0]), DELAY])
    prev = int(tokens_a[0, -1])
    wrong = 7  # never the tiny model's output (it repeats one token)
    worst, checked, pending = 0.0, 0, None
    for pos in range(p, n - 1):
        logits_a, tokens_a = decode_a.execute([embeds[:, pos : pos + 1].contiguous(), torch.tensor([[prev]]),
                                               torch.tensor([pos]), DELAY])  # fmt: skip
        k = min(8, n - pos)
        guessed = torch.tensor([[prev] + [wrong] * (k - 1)])
        _, tokens_b = decode_b.execute([embeds[:, pos : pos + k].contiguous(), guessed, torch.tensor([pos]), DELAY])
        assert int(tokens_b[0, 0]) == int(tokens_a[0, -1]) and int(tokens_a[0, -1]) != wrong
        # roll back: position pos + 1 again, now with the true token; its slot and the k - 2
        # stale ones after it were written from wrong inputs
        nxt = int(tokens_a[0, -1])
        logits_next_b, _ = decode_b.execute([embeds[:, pos + 1 : pos + 2].contiguous(), torch.tensor([[nxt]]),
                                             torch.tensor([pos + 1]), DELAY])  # fmt: skip
        if pos > p:  # the plain step at pos (this round) against the redo of pos (last round)
            worst = max(worst, float((logits_a - pending).abs().max()))
            checked += 1
        pending, prev = logits_next_b, nxt  # the next round's call starts at pos + 1 again
    assert checked > 3 * RING and worst < 1e-5, (checked, worst)


def test_decode_returns_the_greedy_token_of_its_last_positions(tiny_stt_artifact, tiny_stt_dir):
    """decode over T positions: the greedy token of each (the runner's check of its
    guesses), equal to the eager model's argmax at every position."""
    from test_stt_export import load_methods

    g = torch.Generator().manual_seed(0)
    for t in (1, 5, 12):  # a fresh program and model each time: both start at position 0
        _, decode = load_methods(tiny_stt_artifact / "model.pte")
        model = load_stt(tiny_stt_dir)
        embeds = torch.randn(1, t, model.config.decoder.dim, generator=g)
        ids = torch.randint(0, model.config.vocab_size, (1, t), generator=g)
        logits, tokens = decode.execute([embeds, ids, torch.tensor([0]), DELAY])
        with torch.no_grad():
            ref = model.decode(embeds, ids, torch.tensor([0]), DELAY).argmax(-1)
        assert tokens.shape == (1, t) and torch.equal(tokens, ref), t
        assert logits.shape == (1, model.config.vocab_size)
