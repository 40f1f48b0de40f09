"""voxtral_native.Tokenizer against mistral_common's Tekkenizer (tiktoken underneath).

Exact agreement of encode and decode on the shipped Tekken files and on a Voxtral
tekken.json from make_checkpoint: a varied corpus, every Unicode code point, random
text (hypothesis), invalid UTF-8 and lone surrogates, random id sequences under each
special token policy; the stream decoder; the audio block; and bad files and ids.
"""

from __future__ import annotations

import base64
import json
import random
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxtral_native
from voxtral_native import errors

import mistral_common.tokens.tokenizers.tekken as mc_tekken  # noqa: E402
from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

Tekkenizer = mc_tekken.Tekkenizer
DATA = Path(str(resources.files("mistral_common").joinpath("data")))
SHIPPED = ["tekken_240911.json", "tekken_240718.json"]

# --- fixtures -------------------------------------------------------------------------


def _voxtral_tekken(directory: Path) -> Path:
    """tekken.json of a tiny STT checkpoint from make_checkpoint (real ranks, Voxtral's
    1000 special tokens, a streaming audio block)."""
    from voxtral_native.make_checkpoint import make_checkpoint

    return make_checkpoint("stt", "tiny", directory / "stt-tiny") / "tekken.json"


def _tts_tekken(directory: Path) -> Path:
    """tekken.json with the TTS audio block (voice token counts), without the weights."""
    from voxtral_native.make_checkpoint import specs
    from voxtral_native.make_checkpoint.tekken import write_tekken

    path = directory / "tts_tekken.json"
    write_tekken(path, specs.tts_tekken_audio(specs.tts_params("tiny"), specs.tts_voice_frames("tiny")))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tekken")
    return {**{name: DATA / name for name in SHIPPED}, "voxtral": _voxtral_tekken(d), "tts": _tts_tekken(d)}


@pytest.fixture(scope="module")
def pairs(files) -> dict[str, tuple]:
    """name -> (native Tokenizer, mistral_common Tekkenizer)."""
    return {
        name: (voxtral_native.Tokenizer.from_file(str(path)), Tekkenizer.from_file(path))
        for name, path in files.items()
        if name != "tts"
    }


@pytest.fixture(scope="module")
def voxtral(pairs):
    return pairs["voxtral"]


# --- corpus ---------------------------------------------------------------------------

CORPUS = {
    "english": (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness... \"Don't,\" she said; I'll (probably) won't. Mr. O'Neil's U.S.A.-based co-op, e.g. "
        "NASA's JPL, paid $1,234.56 (≈€1.1k) on 2024-06-30T12:00:00Z — 50% off!"
    ),
    "code": (
        'def fib(n: int) -> int:\n    """Fibonacci."""\n    if n < 2:\n        return n\n'
        "    return fib(n - 1) + fib(n - 2)  # O(2^n)\n\n"
        "#include <vector>\nint main(){std::vector<int> v{1,2,3};for(auto&x:v)x*=2;return v[0]!=2;}\r\n"
        "const re = /^[a-z_$][\\w$]*$/i; let x = a?.b ?? c || d && !e; x >>>= 2;\n"
        '<div class="a">&nbsp;</div> SELECT * FROM t WHERE id IN (1, 2) -- done\n'
        "https://example.com/path/to/file.json?q=1&r=%20#frag  ../../etc/passwd C:\\Users\\me\\"
    ),
    "numbers": "0 1 12 123 1234 12345678901234567890 3.14159 -2.5e-10 0x1F 1_000_000 ½ ² ٣ ४२ 一二三 Ⅻ ⑦",
    "whitespace": "a  b   c\t\td \t \n\n\n  e\r\n\r\n f \u00a0\u2003\u3000g  \n \n\t\n   \v\f end   ",
    "crlf": "line one\r\nline two\r\n\r\n  indented\r\n\ttabbed\r\rcarriage\n\rmixed\r\n",
    "chinese": "我们在北京大学学习自然语言处理。今天天气很好，我们去公园散步吧！",
    "japanese": "東京は日本の首都です。ひらがな、カタカナ、漢字を使います。ｶﾀｶﾅ（半角）",
    "korean": "안녕하세요. 저는 한국어를 공부하고 있습니다. 한글은 세종대왕이 만들었습니다.",
    "arabic": "مرحبا بالعالم! اللغة العربية جميلة جداً، وتُكتب من اليمين إلى اليسار. ١٢٣٤",
    "hindi": "नमस्ते दुनिया। हिन्दी देवनागरी लिपि में लिखी जाती है। क्षत्रिय ज्ञान श्री",
    "cyrillic": "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖИК",
    "greek": "Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΆΈΉΊΌΎΏ ΐΰ",
    "thai": "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ กรุงเทพมหานคร",
    "hebrew": "שלום עולם! עִבְרִית נכתבת מימין לשמאל.",
    "georgian_armenian": "გამარჯობა მსოფლიო Բարեւ աշխարհ",
    "bengali_tamil": "হ্যালো বিশ্ব வணக்கம் உலகம்",
    "vietnamese": "Tiếng Việt có dấu: Đường phố Hà Nội rất đông đúc. Nguyễn Thị Minh Khai",
    "german_french": "Größenmaßstäbe für Übergrößen — Ça coûte très cher, n'est-ce pas ? Œuvre naïve",
    "emoji": "I ❤️ 🍕! 👍🏽👨‍👩‍👧‍👦 🇫🇷🇯🇵 😀😃😄 ☺️ ✈︎ 🏳️‍🌈 #️⃣ 1️⃣ 🧑🏿‍💻",
    "combining": "e\u0301 a\u0300\u0316 Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334 ñ n\u0303 ﷺ \u0915\u094d\u0937",
    "mixed_case": "CamelCaseWords HTTPServerError iPhone XMLHttpRequest ǅemal ǈubljana ᾈ ΣΑΣ σας",
    "symbols": "©®™ ±×÷ ≤≥≠ ∑∏∫ √∞ ←↑→↓ ♠♣♥♦ ★☆ ♪♫ ‰ ‱ § ¶ † ‡ • … ‹›«» „“”‚‘’ ¿¡ ¥£€₹₽",
    "control": "\x00\x01\x02 tab\there \x1b[31mred\x1b[0m \x7f\u200b\u200c\u200d\ufeff\u2028\u2029",
    "private_unassigned": "\ue000\uf8ff\U000f0000 \U0010ffff \ufffe \U0001e030\U00010d40\U00011f00 \U0002ebf0",
    "long_word": "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz " * 3 + "a" * 300,
    "long_space": " " * 1000 + "x" + "\n" * 600 + "\t" * 300 + "y" + " \n" * 200,
}


@pytest.mark.parametrize("name", [*SHIPPED, "voxtral"])
def test_corpus_encode_and_decode_match_mistral_common(pairs, name):
    native, mc = pairs[name]
    for key, text in CORPUS.items():
        ids = native.encode(text)
        assert ids == mc.encode(text, bos=False, eos=False), key
        assert native.encode(text, bos=True, eos=True) == mc.encode(text, bos=True, eos=True), key
        assert native.decode(ids) == mc.decode(ids) == text, key
    whole = "\n".join(CORPUS.values())
    assert native.encode(whole) == mc.encode(whole, bos=False, eos=False)


def _probe_tekken(path: Path) -> None:
    """A Tekken file whose merges reveal where the pre-tokenizer splits: every pair of
    (ASCII a, A or B or any byte) and (any byte, a or B). A piece boundary between two
    characters then changes the tokens, so the pre-tokenizers must agree per code point."""
    pattern = json.loads((DATA / SHIPPED[0]).read_text(encoding="utf-8"))["config"]["pattern"]
    tokens = [bytes([i]) for i in range(256)]
    seen = set(tokens)
    for x in range(256):
        for pair in (b"a" + bytes([x]), b"A" + bytes([x]), bytes([x]) + b"a", bytes([x]) + b"B"):
            if pair not in seen:
                seen.add(pair)
                tokens.append(pair)
    vocab = [{"rank": i, "token_bytes": base64.b64encode(t).decode(), "token_str": None} for i, t in enumerate(tokens)]
    config = {"pattern": pattern, "num_vocab_tokens": len(vocab), "default_vocab_size": 1000 + len(vocab),
              "default_num_special_tokens": 1000, "version": "v3"}  # fmt: skip
    path.write_text(json.dumps({"config": config, "vocab": vocab}), encoding="utf-8")


def test_every_code_point_splits_as_tiktoken(tmp_path):
    """Per code point, in contexts that tell Lu/Lt, Ll, Lm/Lo/M, N, White_Space and the
    rest apart. This is what pins the Unicode version of csrc/text/unicode_data.inc."""
    path = tmp_path / "probe_tekken.json"
    _probe_tekken(path)
    native, mc = voxtral_native.Tokenizer.from_file(str(path)), Tekkenizer.from_file(path)
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

    def text(chunk):
        return "".join(f"a{c}\x00{c}a\x00A{c}\x00{c}Ba\x00 {c}\x00" for c in map(chr, chunk))

    def mismatches(chunk):
        if native.encode(text(chunk)) == mc.encode(text(chunk), bos=False, eos=False):
            return []
        if len(chunk) == 1:
            return chunk
        return mismatches(chunk[: len(chunk) // 2]) + mismatches(chunk[len(chunk) // 2 :])

    bad = []
    for i in range(0, len(cps), 1 << 15):
        bad += mismatches(cps[i : i + (1 << 15)])
        assert len(bad) < 20, [f"U+{c:04X}" for c in bad]
    assert not bad, f"code points split differently (Unicode {native.unicode_version}): " + ", ".join(
        f"U+{c:04X}" for c in bad
    )


# --- random text ----------------------------------------------------------------------

INTERESTING = list(" \t\n\r\r\n\u00a0\u3000\u2028\x00'\"/.,!?-_0123456789aAzZéÉßǅʰ中あア한ा्ٔ\u0301😀🏽\u200d")
TEXT = st.text(alphabet=st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(INTERESTING)), max_size=60)
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(text=TEXT)
def test_random_text_matches_mistral_common(voxtral, text):
    native, mc = voxtral
    ids = native.encode(text)
    assert ids == mc.encode(text, bos=False, eos=False)
    assert native.decode(ids) == text


@FAST
@given(
    data=st.binary(max_size=40)
    | st.lists(
        st.sampled_from([b"\xe4", b"\xb8", b"\xad", b"\xf0\x9f", b"a", b" ", b"\xff", b"\xed\xa0\x80", b"\xc0"]),
        max_size=12,
    ).map(b"".join)
)
def test_invalid_utf8_encodes_as_python_replace(voxtral, data):
    """encode_bytes: ill-formed UTF-8 becomes U+FFFD as bytes.decode('utf-8', 'replace')."""
    native, mc = voxtral
    assert native.encode_bytes(data) == mc.encode(data.decode("utf-8", "replace"), bos=False, eos=False)


@pytest.mark.parametrize("text", ["a\ud800b", "\udc00", "x\ud83d\ude00y", "z\ud83d", "ok \udfff\ud800 ok"])
def test_lone_surrogates_are_fixed_up_as_tiktoken_does(voxtral, text):
    native, mc = voxtral
    assert native.encode(text) == mc.encode(text, bos=False, eos=False)


POLICIES = [SpecialTokenPolicy.IGNORE, SpecialTokenPolicy.KEEP]


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40))
def test_random_ids_decode_as_mistral_common(voxtral, seed, n):
    native, mc = voxtral
    rng = random.Random(seed)
    special = native.num_special_tokens

    def one():
        r = rng.random()
        if r < 0.2:
            return rng.randrange(special)
        if r < 0.5:
            return special + rng.randrange(256)  # single bytes: partial characters
        return rng.randrange(special, native.vocab_size)

    ids = [one() for _ in range(n)]
    for policy in POLICIES:
        assert native.decode(ids, special_token_policy=policy) == mc.decode(ids, special_token_policy=policy)
    assert native.decode(ids, special_token_policy=policy.value) == mc.decode(ids, special_token_policy=policy)
    if any(i < special for i in ids):
        with pytest.raises(errors.InvalidArgumentError, match="special token"):
            native.decode(ids, special_token_policy="raise")
    else:
        assert native.decode(ids, special_token_policy="raise") == mc.decode(ids)
    # Streaming: pieces never split a character; with IGNORE they add up to the decode of
    # the text ids alone, with KEEP to mistral_common's decode of everything.
    stream = native.stream_decoder()
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == mc.decode([i for i in ids if i >= special])
    keep = native.stream_decoder("keep")
    assert "".join([keep.push(i) for i in ids] + [keep.flush()]) == mc.decode(ids, special_token_policy="keep")


def test_stream_decoder_holds_partial_characters(voxtral):
    native, _ = voxtral
    text = "naïve 東京 😀!"
    byte_ids = [native.num_special_tokens + b for b in text.encode()]  # one token per byte
    pad = native.id_of("[STREAMING_PAD]")
    stream = native.stream_decoder()
    pieces = []
    for i in byte_ids:
        pieces.append(stream.push(i))
        pieces.append(stream.push(pad))  # control tokens are invisible, even mid-character
    assert "".join(pieces) + stream.flush() == text
    assert "".join(pieces) == text
    assert [p for p in pieces if p] == list(text)  # each character exactly when complete
    assert stream.push(byte_ids[7]) == "" and stream.pending_bytes == 1  # first byte of 東
    assert stream.flush() == "\ufffd" and stream.pending_bytes == 0


def test_pieces_and_token_bytes(voxtral):
    native, mc = voxtral
    for i in [0, 1, 32, 999, 1000, 1001, 1255, 1256, 5000, 131071]:
        assert native.piece(i) == mc.id_to_piece(i)
        assert native.token_bytes(i) == mc.id_to_byte_piece(i)
        assert native.is_control(i) == (i < 1000)


# --- special tokens, audio ------------------------------------------------------------


def test_special_tokens_and_sizes(pairs):
    for name, (native, mc) in pairs.items():
        assert native.vocab_size == mc.n_words, name
        assert native.num_special_tokens == mc.num_special_tokens, name
        for token in mc._all_special_tokens:
            assert native.id_of(token["token_str"]) == mc.get_special_token(token["token_str"]), name
    native, _ = pairs["voxtral"]
    ids = {
        n: native.id_of(n) for n in ["<s>", "</s>", "[AUDIO]", "[BEGIN_AUDIO]", "[STREAMING_PAD]", "[STREAMING_WORD]"]
    }
    assert ids == {
        "<s>": 1,
        "</s>": 2,
        "[AUDIO]": 24,
        "[BEGIN_AUDIO]": 25,
        "[STREAMING_PAD]": 32,
        "[STREAMING_WORD]": 33,
    }
    with pytest.raises(errors.NotFoundError, match=r"\[NOPE\]"):
        native.id_of("[NOPE]")
    with pytest.raises(errors.NotFoundError):
        pairs[SHIPPED[0]][0].id_of("[STREAMING_PAD]")  # not in the v3 files


def test_audio_block_matches_mistral_common(pairs, files):
    native, mc = pairs["voxtral"]
    a, ref = native.audio, mc.audio
    assert (a.sampling_rate, a.frame_rate, a.streaming) == (16000, 12.5, True)
    assert (a.num_mel_bins, a.hop_length, a.window_size) == (
        ref.encoding_config.num_mel_bins,
        ref.encoding_config.hop_length,
        ref.encoding_config.window_size,
    )
    assert a.transcription_delay_ms == ref.transcription_delay_ms
    assert a.streaming_n_left_pad_tokens == ref.n_left_pad_tokens == 32
    assert (a.streaming_look_ahead_ms, a.streaming_look_back_ms) == (2.5, 52.5)
    assert a.chunk_length_s is None
    assert a.samples_per_token == ref.raw_audio_length_per_tok == 1280
    for ms in [None, 80, 160, 480, 960, 1200, 2400]:
        assert a.num_delay_tokens(ms) == ref.get_num_delay_tokens(ms), ms
    assert pairs[SHIPPED[0]][0].audio is None
    tts = voxtral_native.Tokenizer.from_file(str(files["tts"]))
    tts_ref = Tekkenizer.from_file(files["tts"]).audio
    assert tts.audio.voice_num_audio_tokens == tts_ref.voice_num_audio_tokens
    assert tts.audio.sampling_rate == tts_ref.sampling_rate and not tts.audio.streaming


def test_package_exports_tokenizer():
    assert voxtral_native.Tokenizer is voxtral_native.native().Tokenizer
    assert "Tokenizer" in voxtral_native.__all__
    assert voxtral_native.Tokenizer.unicode_version == "16.0.0"


# --- bad input ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_tekken() -> dict:
    """A valid tekken.json dict with 300 ranks, to break in different ways."""
    shipped = json.loads((DATA / SHIPPED[0]).read_text(encoding="utf-8"))
    return {
        "config": {**shipped["config"], "default_vocab_size": 1300, "version": "v3"},
        "vocab": shipped["vocab"][:300],
    }


def _write(tmp_path: Path, content) -> str:
    path = tmp_path / "tekken.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def test_small_file_loads(tmp_path, small_tekken):
    t = voxtral_native.Tokenizer.from_file(_write(tmp_path, small_tekken))
    assert t.vocab_size == 1300 and t.version == 3
    assert t.decode(t.encode("hello world")) == "hello world"


def test_missing_file(tmp_path):
    with pytest.raises(errors.NotFoundError, match="nope.json") as info:
        voxtral_native.Tokenizer.from_file(str(tmp_path / "nope.json"))
    assert isinstance(info.value, FileNotFoundError)


def test_truncated_file(tmp_path, small_tekken):
    text = json.dumps(small_tekken)
    path = _write(tmp_path, text[: len(text) // 2])
    with pytest.raises(errors.InvalidModelError, match="unexpected end of file") as info:
        voxtral_native.Tokenizer.from_file(path)
    assert path in str(info.value)


def _broken(small_tekken, edit):
    d = json.loads(json.dumps(small_tekken))
    edit(d)
    return d


BROKEN = {
    "not json": ("{config: 1}", r"invalid JSON at line 1, column 2: expected a string key"),
    "not an object": ("[1, 2]", "top level must be an object"),
    "no config": (lambda d: d.pop("config"), "missing field 'config'"),
    "no pattern": (lambda d: d["config"].pop("pattern"), "missing field 'config.pattern'"),
    "vocab size as string": (
        lambda d: d["config"].update(default_vocab_size="1300"),
        "'config.default_vocab_size' must be a number, got a string",
    ),
    "vocab not a list": (lambda d: d.update(vocab={}), "'vocab' must be an array, got an object"),
    "empty vocab": (lambda d: d.update(vocab=[]), "'vocab' is empty"),
    "short vocab": (lambda d: d["config"].update(default_vocab_size=2000), "'vocab' has 300 entries, fewer than"),
    "rank out of order": (lambda d: d["vocab"][7].update(rank=8), r"'vocab\[7\].rank' is 8"),
    "bad base64": (lambda d: d["vocab"][270].update(token_bytes="***"), r"'vocab\[270\].token_bytes' is not valid"),
    "byte token wrong": (lambda d: d["vocab"][65].update(token_bytes="Qg=="), r"'vocab\[65\]' must be the single byte"),
    "unknown version": (lambda d: d["config"].update(version="latest"), "must look like"),
    "unsupported pattern": (
        lambda d: d["config"].update(pattern=r"(?i:'s|'t)|\p{L}+| ?\p{N}+"),
        "config.pattern: unsupported regex construct",
    ),
    "special token list wrong type": (
        lambda d: d.update(special_tokens=[1, 2]),
        r"'special_tokens\[0\]' must be an object",
    ),
    "audio without rate": (lambda d: d.update(audio={"frame_rate": 12.5}), "missing field 'audio.sampling_rate'"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_malformed_file_names_file_and_problem(tmp_path, small_tekken, case):
    content, message = BROKEN[case]
    path = _write(tmp_path, content if isinstance(content, str) else _broken(small_tekken, content))
    with pytest.raises(errors.InvalidModelError, match=message) as info:
        voxtral_native.Tokenizer.from_file(path)
    assert path in str(info.value)


def test_out_of_range_ids_are_errors(voxtral):
    native, _ = voxtral
    for bad in [-1, native.vocab_size, 2**31, -(2**40)]:
        with pytest.raises(errors.OutOfRangeError, match=str(bad)):
            native.decode([1000, bad])
        with pytest.raises(errors.OutOfRangeError):
            native.token_bytes(bad)
        with pytest.raises(errors.OutOfRangeError):
            native.stream_decoder().push(bad)
    with pytest.raises(errors.InvalidArgumentError, match="special_token_policy"):
        native.decode([1000], special_token_policy="drop")
    assert not native.is_control(-1) and not native.is_control(native.vocab_size)
