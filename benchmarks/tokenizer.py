"""Tokenizer throughput: voxtral_native.Tokenizer against mistral_common (tiktoken underneath).

Same tekken.json, same text, one process; medians of several runs, single thread.
Throughput is UTF-8 megabytes of text per second (input for encode, output for decode).

    python benchmarks/tokenizer.py                      # mistral_common's tekken_240911.json
    python benchmarks/tokenizer.py --tekken model/tekken.json --mb 8 --runs 7
    python benchmarks/tokenizer.py --text-file book.txt
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from importlib import resources
from pathlib import Path

# Seed paragraphs; the benchmark text is these, word-shuffled, to the requested size.
SAMPLES = {
    "english": (
        "The speech-to-text runner turns token ids into text as they stream, and the text-to-speech "
        "runner turns user text into token ids. Both happen in the native library, so C++ users get "
        "them without Python. It was the best of times, it was the worst of times; it was the age of "
        "wisdom, it was the age of foolishness. In 2024, about 1,234 people paid $56.78 each.\n\n"
    ),
    "code": (
        "def encode(self, text: str, bos: bool = False) -> list[int]:\n"
        "    ids = [t + self.num_special for t in self._model.encode(text)]\n"
        "    return [self.bos_id, *ids] if bos else ids  # TODO(perf): avoid the copy\n"
        "for (size_t i = 0; i < n; ++i) { out.push_back(ranks[i] + offset); }\r\n"
    ),
    "multilingual": (
        "我们在北京大学学习自然语言处理。東京は日本の首都です。안녕하세요, 반갑습니다. "
        "مرحبا بالعالم، اللغة العربية جميلة. नमस्ते दुनिया, हिन्दी भाषा। Привет, мир! "
        "Γειά σου Κόσμε. สวัสดีชาวโลก שלום עולם Größenmaßstäbe für Übergrößen. 😀👍🏽\n"
    ),
}
WEIGHTS = {"english": 0.6, "code": 0.2, "multilingual": 0.2}


def make_text(megabytes: float, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = {k: v.split(" ") for k, v in SAMPLES.items()}
    parts, size = [], 0
    target = int(megabytes * 1e6)
    while size < target:
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        w = words[kind][:]
        rng.shuffle(w)
        chunk = " ".join(w)
        parts.append(chunk)
        size += len(chunk.encode())
    return "".join(parts)


def median_seconds(fn, runs: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_tekken = Path(str(resources.files("mistral_common").joinpath("data/tekken_240911.json")))
    parser.add_argument("--tekken", type=Path, default=default_tekken)
    parser.add_argument("--mb", type=float, default=4.0, help="size of the generated text (MB)")
    parser.add_argument("--text-file", type=Path, help="benchmark this UTF-8 file instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    import voxtral_native

    t0 = time.perf_counter()
    native = voxtral_native.Tokenizer.from_file(str(args.tekken))
    t1 = time.perf_counter()
    mc = Tekkenizer.from_file(args.tekken)
    t2 = time.perf_counter()
    tiktoken_enc = mc._model  # the tiktoken.Encoding mistral_common wraps

    text = args.text_file.read_text(encoding="utf-8") if args.text_file else make_text(args.mb)
    mb = len(text.encode()) / 1e6
    ids = native.encode(text)
    assert ids == mc.encode(text, bos=False, eos=False), "native and mistral_common disagree on this text"
    ranks = [i - mc.num_special_tokens for i in ids]

    print(f"tekken: {args.tekken}")
    print(f"text: {mb:.2f} MB, {len(text):,} characters, {len(ids):,} tokens; median of {args.runs} runs")
    print(f"load: native {t1 - t0:.3f} s, mistral_common {t2 - t1:.3f} s")
    rows = [
        ("encode", "voxtral_native", lambda: native.encode(text)),
        ("encode", "tiktoken", lambda: tiktoken_enc.encode_ordinary(text)),
        ("encode", "mistral_common", lambda: mc.encode(text, bos=False, eos=False)),
        ("decode", "voxtral_native", lambda: native.decode(ids)),
        ("decode", "tiktoken", lambda: tiktoken_enc.decode(ranks)),
        ("decode", "mistral_common", lambda: mc.decode(ids)),
    ]
    speeds: dict[tuple[str, str], float] = {}
    print(f"{'op':<8}{'implementation':<17}{'MB/s':>9}{'Mtok/s':>9}")
    for op, name, fn in rows:
        s = median_seconds(fn, args.runs)
        speeds[op, name] = mb / s
        print(f"{op:<8}{name:<17}{mb / s:>9.1f}{len(ids) / s / 1e6:>9.2f}")
    for op in ("encode", "decode"):
        ratio = speeds[op, "voxtral_native"] / speeds[op, "tiktoken"]
        print(f"{op}: voxtral_native is {ratio:.2f}x tiktoken")


if __name__ == "__main__":
    main()
