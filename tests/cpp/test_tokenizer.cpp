// The Tekken tokenizer and its parts: UTF-8 with CPython's replacement, base64, the JSON
// reader, the pre-tokenizer, BPE, tekken.json loading and its errors, decode policies
// and the stream decoder. Uses a tiny synthetic tekken.json written here; the real
// files are compared with mistral_common in tests/python/test_tokenizer.py.
//
// argv[1] (optional): a scratch directory for files.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "text/base64.h"
#include "text/bpe.h"
#include "text/json.h"
#include "text/pretokenizer.h"
#include "text/unicode.h"
#include "text/utf8.h"
#include "voxtral/tokenizer.h"

using voxtral::ErrorCode;
using voxtral::SpecialTokenPolicy;
using voxtral::StreamDecoder;
using voxtral::Tokenizer;
namespace text = voxtral::text;

namespace {

const std::string kTekkenPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|)"
    R"(\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string replaced(const std::string& bytes) {
  std::string out;
  text::append_utf8_replacing(out, bytes.data(), bytes.size());
  return out;
}

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

void test_utf8() {
  // Expected values are CPython's bytes.decode("utf-8", "replace").
  CHECK_EQ(replaced("abc"), std::string("abc"));
  CHECK_EQ(replaced("\xE4\xB8\xAD"), std::string("\xE4\xB8\xAD"));
  CHECK_EQ(replaced("\xE4\xB8"), R);                         // truncated: one U+FFFD
  CHECK_EQ(replaced("\xF0\x9F\x98"), R);                     // truncated 4-byte
  CHECK_EQ(replaced("\xF0\x80"), R + R);                     // F0 needs 90..BF next
  CHECK_EQ(replaced("\xED\xA0\x80"), R + R + R);             // surrogate
  CHECK_EQ(replaced("\xC0\xAF"), R + R);                     // overlong
  CHECK_EQ(replaced("\xFF" "a"), R + "a");
  CHECK_EQ(replaced("a\xE4\xB8" "b"), "a" + R + "b");
  CHECK_EQ(replaced("\xE4\xB8\xE4\xB8\xAD"), R + "\xE4\xB8\xAD");
  CHECK_EQ(replaced("\xF4\x90\x80\x80"), R + R + R + R);     // > U+10FFFF
  CHECK_EQ(replaced(std::string("\0x", 2)), std::string("\0x", 2));
  size_t at = 0;
  CHECK(text::is_valid_utf8("hello \xE4\xB8\xAD", 9));
  CHECK(!text::is_valid_utf8("hello\x80", 6, &at));
  CHECK_EQ(at, size_t{5});
  std::string enc;
  text::append_utf8(enc, 0x1F600);
  CHECK_EQ(enc, std::string("\xF0\x9F\x98\x80"));
}

void test_base64() {
  std::string out;
  CHECK(text::base64_decode("aGVsbG8=", out));
  CHECK_EQ(out, std::string("hello"));
  out.clear();
  CHECK(text::base64_decode("AA==", out));
  CHECK_EQ(out, std::string(1, '\0'));
  out.clear();
  CHECK(text::base64_decode("", out));
  CHECK(out.empty());
  CHECK(text::base64_decode("/+8=", out));
  CHECK_EQ(out, std::string("\xFF\xEF"));
  for (const char* bad : {"aGVsbG8", "aGVsbG8==", "aGV sbG8=", "A===", "AB=C", "AB-_", "AB==AAAA", "AQ=A", "AB=="}) {
    std::string o = "keep";
    CHECK(!text::base64_decode(bad, o));
    CHECK_EQ(o, std::string("keep"));
  }
}

voxtral::Status json_error(const std::string& s) {
  auto r = text::JsonDocument::parse(s, "t.json");
  return r.ok() ? voxtral::Status() : r.status();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void test_json() {
  auto doc = text::JsonDocument::parse(
      R"({"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800",
          "u": "é", "d": 1, "d": 2, "big": 123456789012, "o": {}})",
      "t.json");
  CHECK(doc.ok());
  if (doc.ok()) {
    const auto& root = doc->root();
    CHECK(root.is_object());
    const auto* a = root.find("a");
    CHECK(a && a->is_array() && a->size() == 5);
    int64_t v = 0;
    CHECK(a->at(0).to_int64(&v) && v == 1);
    CHECK(!a->at(1).to_int64(&v));
    CHECK_NEAR(a->at(1).to_double(), -2500.0, 1e-9);
    CHECK(a->at(2).is_bool() && a->at(2).boolean());
    CHECK(a->at(4).is_null());
    CHECK_EQ(std::string(root.find("s")->string()),
             std::string("x\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80\xEF\xBF\xBD"));
    CHECK_EQ(std::string(root.find("u")->string()), std::string("\xC3\xA9"));
    CHECK(root.find("d")->to_int64(&v) && v == 2);  // the last duplicate wins, as in Python
    CHECK(root.find("big")->to_int64(&v) && v == 123456789012);
    CHECK(root.find("missing") == nullptr);
    CHECK(root.find("o")->is_object() && root.find("o")->size() == 0);
  }
  int64_t v;
  auto num = text::JsonDocument::parse("9223372036854775808", "n");
  CHECK(num.ok() && !num->root().to_int64(&v));
  auto neg = text::JsonDocument::parse("-9223372036854775808", "n");
  CHECK(neg.ok() && neg->root().to_int64(&v) && v == INT64_MIN);

  struct Bad {
    const char* json;
    const char* message;
  };
  const Bad bad[] = {
      {"", "unexpected end of file"},
      {R"({"a": [1, 2)", "unexpected end of file"},
      {R"({"a": "abc)", "unterminated string"},
      {R"({"a": 1,})", "expected a string key"},
      {"[1, 2,]", "expected a value"},
      {"[01]", "leading zeros"},
      {"[1.]", "digit after '.'"},
      {"[NaN]", "expected a value"},
      {"{'a': 1}", "expected a string key"},
      {"[\"a\tb\"]", "control character"},
      {"[\"\\x\"]", "invalid escape"},
      {"[\"\\u12G4\"]", "hex digit"},
      {"[\"\xFF\"]", "invalid UTF-8"},
      {"{} x", "after the top-level value"},
      {"[1]\n[2]", "line 2, column 1"},
      {"// c\n{}", "line 1, column 1"},
      {"{\"a\" 1}", "expected ':'"},
      {"tru", "expected a value"},
  };
  for (const Bad& b : bad) {
    const voxtral::Status s = json_error(b.json);
    CHECK(!s.ok());
    CHECK(s.code() == ErrorCode::kInvalidProgram);
    if (!contains(s.message(), b.message) || !contains(s.message(), "t.json")) {
      std::fprintf(stderr, "json %s -> %s\n", b.json, s.message().c_str());
      CHECK(false);
    }
  }
  // Deep nesting is refused, not a stack overflow.
  const voxtral::Status deep = json_error(std::string(100000, '['));
  CHECK(contains(deep.message(), "nested deeper"));
  CHECK(json_error(std::string(200, '[') + std::string(200, ']')).ok());
}

std::vector<std::string> split(const text::Pretokenizer& p, const std::string& s) {
  std::vector<std::string> pieces;
  p.split(s, [&](size_t b, size_t e) { pieces.push_back(s.substr(b, e - b)); });
  return pieces;
}

using Pieces = std::vector<std::string>;

void test_pretokenizer() {
  auto compiled = text::Pretokenizer::compile(kTekkenPattern);
  CHECK(compiled.ok());
  if (!compiled.ok()) {
    std::fprintf(stderr, "%s\n", compiled.status().message().c_str());
    return;
  }
  const text::Pretokenizer& p = *compiled;
  // Expected splits from the same pattern in a backtracking regex engine.
  CHECK(split(p, "Hello world") == (Pieces{"Hello", " world"}));
  CHECK(split(p, "  leading spaces") == (Pieces{" ", " leading", " spaces"}));
  CHECK(split(p, "don't STOP123 now!!") == (Pieces{"don", "'t", " STOP", "1", "2", "3", " now", "!!"}));
  CHECK(split(p, "a\r\n\r\nb") == (Pieces{"a", "\r\n\r\n", "b"}));
  CHECK(split(p, "x   \n  y") == (Pieces{"x", "   \n", " ", " y"}));
  CHECK(split(p, "CamelCaseWord") == (Pieces{"Camel", "Case", "Word"}));
  CHECK(split(p, "  \t") == (Pieces{"  \t"}));
  CHECK(split(p, "\xC3\xBC" "ber Stra\xC3\x9F" "e") == (Pieces{"\xC3\xBC" "ber", " Stra\xC3\x9F" "e"}));
  CHECK(split(p, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E") == (Pieces{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"}));
  CHECK(split(p, "e\xCC\x81t\xC3\xA9") == (Pieces{"e\xCC\x81t\xC3\xA9"}));
  CHECK(split(p, "foo/bar//\n") == (Pieces{"foo", "/bar", "//\n"}));
  CHECK(split(p, "\xC2\xA0\xC2\xA0x") == (Pieces{"\xC2\xA0", "\xC2\xA0x"}));
  CHECK(split(p, "").empty());

  // Other members of the family: cl100k-style counted repeats, '.', escapes; unmatched text is dropped.
  auto digits = text::Pretokenizer::compile(R"(\p{N}{1,3}|[a-c]?x|\.)");
  CHECK(!digits.ok());  // ranges are refused
  auto counted = text::Pretokenizer::compile(R"(\p{N}{1,3}|\S+|\x41)");
  CHECK(counted.ok());
  if (counted.ok()) CHECK(split(*counted, "12345 ab") == (Pieces{"123", "45", "ab"}));
  auto dot = text::Pretokenizer::compile(R"(.|\n)");
  CHECK(dot.ok());
  if (dot.ok()) CHECK(split(*dot, "a\n") == (Pieces{"a", "\n"}));

  struct Bad {
    const char* pattern;
    const char* message;
  };
  const Bad bad[] = {
      {R"((?i:'s|'t)|\p{L}+)", "groups and flags"},
      {R"((a|b))", "groups"},
      {R"(\w+)", "escape \\w"},
      {R"(\p{Greek}+)", "property 'Greek'"},
      {R"(a+?)", "lazy"},
      {R"(^a)", "anchors"},
      {R"(a|)", "empty alternative"},
      {R"(\s*)", "empty string"},
      {R"([abc)", "unclosed"},
      {R"(\s+(?!\S\S))", "more than one character class"},
      {R"(a{2,1})", "empty {m,n}"},
      {R"(*a)", "without an expression"},
      {"", "empty"},
  };
  for (const Bad& b : bad) {
    auto r = text::Pretokenizer::compile(b.pattern);
    CHECK(!r.ok());
    if (r.ok() || !contains(r.status().message(), b.message) || !contains(r.status().message(), "config.pattern")) {
      std::fprintf(stderr, "pattern %s -> %s\n", b.pattern, r.ok() ? "ok" : r.status().message().c_str());
      CHECK(false);
    }
  }
}

void test_unicode() {
  CHECK(text::general_category('A') == text::kLu);
  CHECK(text::general_category('a') == text::kLl);
  CHECK(text::general_category('7') == text::kNd);
  CHECK(text::general_category(' ') == text::kZs);
  CHECK(text::general_category('\n') == text::kCcWhiteSpace);
  CHECK(text::general_category(0x01) == text::kCc);
  CHECK(text::general_category(0x0301) == text::kMn);
  CHECK(text::general_category(0x4E2D) == text::kLo);
  CHECK(text::general_category(0x01C5) == text::kLt);
  CHECK(text::general_category(0x2028) == text::kZl);
  CHECK(text::general_category(0xD800) == text::kCs);
  CHECK(text::general_category(0x10FFFF) == text::kCn);
  CHECK(text::general_category(0x110000) == text::kCn);
  CHECK(std::string(text::unicode_version()).size() >= 5);
}

// BPE: the heap merge for long pieces gives the same tokens as tiktoken's quadratic one.
void test_bpe() {
  text::RankTable ranks;
  for (int b = 0; b < 256; ++b) CHECK(ranks.add(std::string(1, static_cast<char>(b))));
  CHECK(!ranks.add("a"));
  for (const char* t : {"ab", "ba", "aa", "aab", "bab", "abab", "ababa", "bb", "aaaa", "aaab"}) CHECK(ranks.add(t));
  CHECK(ranks.find("abab", 4) == 261);
  CHECK(ranks.find("abc", 3) == text::RankTable::kNoRank);
  std::mt19937 rng(7);
  std::vector<uint64_t> scratch;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = 257 + rng() % 300;  // past the quadratic threshold
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back("ab"[rng() % 2]);
    std::vector<int> whole, parts;
    ranks.encode_piece(s, 0, whole, scratch);
    // The same merges, 256 bytes at a time, cannot be compared directly; instead check
    // the quadratic path on a copy shortened below the threshold equals the heap path
    // on that copy padded into a long piece of a byte with no merges.
    std::string longer = s.substr(0, 200) + std::string(100, 'z');
    std::vector<int> heap_ids, small_ids;
    ranks.encode_piece(longer, 0, heap_ids, scratch);
    ranks.encode_piece(s.substr(0, 200), 0, small_ids, scratch);
    small_ids.insert(small_ids.end(), 100, 'z');
    CHECK(heap_ids == small_ids);
    // Tokens always spell the piece.
    std::string spelled;
    for (int id : whole) spelled += std::string(ranks.bytes(static_cast<uint32_t>(id)));
    CHECK_EQ(spelled, s);
  }
}

// --- tekken.json -----------------------------------------------------------------------

std::string base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Merged tokens after the 256 bytes, from rank 256 on.
const std::vector<std::string> kMerges = {"he", "ll", "hell", "hello", " w", "or", " wor", " world",
                                          "\xE4\xB8", "\xE4\xB8\xAD", "  ", "\n\n"};
constexpr int kNumSpecial = 40;
constexpr int kVocab = kNumSpecial + 256 + 12;

struct TekkenOptions {
  std::string pattern = kTekkenPattern;
  std::string version = "v7";
  int vocab_size = kVocab;
  int num_special = kNumSpecial;
  bool special_tokens = true;
  bool audio = true;
  std::string extra_vocab;  // appended entries (already JSON)
};

std::string tekken_json(const TekkenOptions& o = {}) {
  std::string vocab;
  for (int i = 0; i < 256 + static_cast<int>(kMerges.size()); ++i) {
    const std::string bytes = i < 256 ? std::string(1, static_cast<char>(i)) : kMerges[i - 256];
    if (!vocab.empty()) vocab += ",";
    vocab += R"({"rank": )" + std::to_string(i) + R"(, "token_bytes": ")" + base64(bytes) + R"(", "token_str": null})";
  }
  vocab += o.extra_vocab;
  std::string specials;
  for (int i = 0; i < 34; ++i) {
    std::string name = "<SPECIAL_" + std::to_string(i) + ">";
    if (i == 0) name = "<unk>";
    if (i == 1) name = "<s>";
    if (i == 2) name = "</s>";
    if (i == 24) name = "[AUDIO]";
    if (i == 25) name = "[BEGIN_AUDIO]";
    if (i == 32) name = "[STREAMING_PAD]";
    if (i == 33) name = "[STREAMING_WORD]";
    if (!specials.empty()) specials += ",";
    specials += R"({"rank": )" + std::to_string(i) + R"(, "token_str": )" + json_string(name) +
                R"(, "is_control": true})";
  }
  std::string json = R"({"config": {"pattern": )" + json_string(o.pattern) +
                     R"(, "num_vocab_tokens": 268, "default_vocab_size": )" + std::to_string(o.vocab_size) +
                     R"(, "default_num_special_tokens": )" + std::to_string(o.num_special) + R"(, "version": ")" +
                     o.version + R"("}, "vocab": [)" + vocab + "]";
  if (o.special_tokens) json += R"(, "special_tokens": [)" + specials + "]";
  if (o.audio)
    json += R"(, "audio": {"sampling_rate": 16000, "frame_rate": 12.5, "audio_encoding_config": {"num_mel_bins": 128,
      "hop_length": 160, "window_size": 400}, "chunk_length_s": null, "transcription_format": "streaming",
      "transcription_delay_ms": 480, "streaming_look_ahead_ms": 2.5, "streaming_look_back_ms": 52.5,
      "streaming_n_left_pad_tokens": 32})";
  return json + "}";
}

int text_id(int rank) { return kNumSpecial + rank; }

std::unique_ptr<Tokenizer> tiny() {
  auto t = Tokenizer::from_json(tekken_json(), "tiny.json");
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
    return nullptr;
  }
  return std::move(*t);
}

void test_load_and_lookup() {
  auto t = tiny();
  CHECK(t != nullptr);
  if (!t) return;
  CHECK_EQ(t->vocab_size(), kVocab);
  CHECK_EQ(t->num_special_tokens(), kNumSpecial);
  CHECK_EQ(t->version(), 7);
  CHECK_EQ(*t->id_of("[STREAMING_PAD]"), 32);
  CHECK_EQ(*t->id_of("[BEGIN_AUDIO]"), 25);
  CHECK_EQ(*t->id_of("<s>"), 1);
  CHECK_EQ(*t->id_of("<SPECIAL_39>"), 39);  // filled up to default_num_special_tokens
  CHECK(t->id_of("[NOPE]").status().code() == ErrorCode::kNotFound);
  CHECK(t->is_control(0) && t->is_control(39) && !t->is_control(40) && !t->is_control(-1));
  CHECK_EQ(*t->piece(32), std::string("[STREAMING_PAD]"));
  CHECK_EQ(*t->piece(text_id(259)), std::string("hello"));
  CHECK_EQ(*t->piece(text_id(264)), R);  // half a character
  CHECK_EQ(std::string(*t->token_bytes(text_id(264))), std::string("\xE4\xB8"));
  CHECK(t->token_bytes(5)->empty());
  CHECK(t->token_bytes(kVocab).status().code() == ErrorCode::kOutOfRange);

  const voxtral::AudioConfig* a = t->audio();
  CHECK(a != nullptr);
  if (a) {
    CHECK_EQ(a->sampling_rate, 16000);
    CHECK_NEAR(a->frame_rate, 12.5, 0);
    CHECK_EQ(a->hop_length, 160);
    CHECK(a->streaming);
    CHECK_EQ(*a->streaming_n_left_pad_tokens, 32);
    CHECK_EQ(a->samples_per_token(), 1280);
    CHECK_EQ(a->num_delay_tokens(), 6);
    CHECK_EQ(a->num_delay_tokens(80.0), 1);
    CHECK_EQ(a->num_delay_tokens(2400.0), 30);
    CHECK(!a->chunk_length_s.has_value());
  }
  TekkenOptions no_audio;
  no_audio.audio = false;
  auto t2 = Tokenizer::from_json(tekken_json(no_audio));
  CHECK(t2.ok() && (*t2)->audio() == nullptr);
  // Without a special_tokens list a v3 file gets mistral_common's 20 defaults + fillers.
  TekkenOptions v3;
  v3.special_tokens = false;
  v3.version = "v3";
  auto t3 = Tokenizer::from_json(tekken_json(v3));
  CHECK(t3.ok());
  if (t3.ok()) {
    CHECK_EQ(*(*t3)->id_of("[TOOL_CONTENT]"), 19);
    CHECK_EQ(*(*t3)->id_of("<SPECIAL_20>"), 20);
    CHECK((*t3)->id_of("[STREAMING_PAD]").status().code() == ErrorCode::kNotFound);
  }
}

std::vector<int> ids_of(const Tokenizer& t, const std::string& s) {
  auto r = t.encode(s);
  CHECK(r.ok());
  return r.ok() ? *r : std::vector<int>{};
}

void test_encode_decode() {
  auto t = tiny();
  if (!t) return;
  CHECK(ids_of(*t, "hello world") == (std::vector<int>{text_id(259), text_id(263)}));
  CHECK(ids_of(*t, "hellx") == (std::vector<int>{text_id(258), text_id('x')}));  // he+l+l+x -> hell, x
  CHECK(ids_of(*t, "\xE4\xB8\xAD") == (std::vector<int>{text_id(265)}));
  CHECK(ids_of(*t, "").empty());
  CHECK(*t->encode("hello", true, true) == (std::vector<int>{1, text_id(259), 2}));
  // encode() wants UTF-8; encode_bytes() replaces bad bytes with U+FFFD first.
  auto bad = t->encode("ab\xFF");
  CHECK(!bad.ok() && bad.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(bad.status().message(), "byte 2"));
  CHECK(*t->encode_bytes("ab\xFF") == *t->encode("ab" + R));
  CHECK(*t->encode_bytes("hello") == ids_of(*t, "hello"));

  const std::vector<int> ids = {1, text_id(259), 32, text_id(263), 2};
  CHECK_EQ(*t->decode(ids), std::string("hello world"));
  CHECK_EQ(*t->decode(ids, SpecialTokenPolicy::kKeep), std::string("<s>hello[STREAMING_PAD] world</s>"));
  auto raised = t->decode(ids, SpecialTokenPolicy::kRaise);
  CHECK(!raised.ok() && raised.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(raised.status().message(), "<s>"));
  CHECK_EQ(*t->decode(std::vector<int>{text_id(263)}, SpecialTokenPolicy::kRaise), std::string(" world"));
  // A character split by a special token: each run is decoded alone (mistral_common).
  CHECK_EQ(*t->decode({text_id(264), 32, text_id(0xAD)}), R + R);
  CHECK_EQ(*t->decode({text_id(264), text_id(0xAD)}), std::string("\xE4\xB8\xAD"));
  // Ids out of range are errors.
  for (int bad_id : {-1, kVocab, kVocab + 1000, INT32_MIN, INT32_MAX}) {
    auto r = t->decode({text_id(1), bad_id});
    CHECK(!r.ok() && r.status().code() == ErrorCode::kOutOfRange);
  }
  // Any in-range sequence decodes.
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int> random_ids(rng() % 12);
    for (int& id : random_ids) id = static_cast<int>(rng() % kVocab);
    CHECK(t->decode(random_ids).ok());
  }
}

std::string stream_all(StreamDecoder& d, const std::vector<int>& ids, std::vector<std::string>* pieces = nullptr) {
  std::string out;
  for (int id : ids) {
    auto piece = d.push(id);
    CHECK(piece.ok());
    if (!piece.ok()) continue;
    if (pieces) pieces->push_back(*piece);
    out += *piece;
  }
  const std::string tail = d.flush();
  if (pieces) pieces->push_back(tail);
  return out + tail;
}

void test_stream_decoder() {
  auto t = tiny();
  if (!t) return;
  const std::string zhong = "\xE4\xB8\xAD";
  {  // A 3-byte character over three single-byte tokens: held until complete.
    StreamDecoder d(*t);
    std::vector<std::string> pieces;
    stream_all(d, {text_id(259), text_id(0xE4), text_id(0xB8), text_id(0xAD), text_id(263)}, &pieces);
    CHECK(pieces == (std::vector<std::string>{"hello", "", "", zhong, " world", ""}));
  }
  {  // A 4-byte emoji byte by byte, then bytes that can never complete.
    StreamDecoder d(*t);
    CHECK_EQ(*d.push(text_id(0xF0)), std::string());
    CHECK_EQ(d.pending_bytes(), size_t{1});
    CHECK_EQ(*d.push(text_id(0x9F)), std::string());
    CHECK_EQ(*d.push(text_id(0x98)), std::string());
    CHECK_EQ(*d.push(text_id(0x80)), std::string("\xF0\x9F\x98\x80"));
    CHECK_EQ(d.pending_bytes(), size_t{0});
    CHECK_EQ(*d.push(text_id(0xFF)), R);                 // never valid: out at once
    CHECK_EQ(*d.push(text_id(0xE4)), std::string());     // held
    CHECK_EQ(*d.push(text_id('a')), R + "a");            // cannot complete: U+FFFD, then 'a'
    CHECK_EQ(*d.push(text_id(264)), std::string());      // E4 B8 held
    CHECK_EQ(d.flush(), R);                              // the end of the stream
    CHECK_EQ(d.flush(), std::string());
  }
  {  // kIgnore: control tokens are invisible, even inside a character.
    StreamDecoder d(*t);
    std::vector<std::string> pieces;
    stream_all(d, {text_id(264), 32, 33, text_id(0xAD), 32}, &pieces);
    CHECK(pieces == (std::vector<std::string>{"", "", "", zhong, "", ""}));
  }
  {  // kKeep: names in order; held bytes become U+FFFD first, exactly as decode(ids, kKeep).
    StreamDecoder d(*t, SpecialTokenPolicy::kKeep);
    const std::vector<int> ids = {1, text_id(259), 32, text_id(264), 33, text_id(0xAD), 2};
    std::vector<std::string> pieces;
    const std::string all = stream_all(d, ids, &pieces);
    CHECK(pieces == (std::vector<std::string>{"<s>", "hello", "[STREAMING_PAD]", "", R + "[STREAMING_WORD]", R,
                                              "</s>", ""}));
    CHECK_EQ(all, *t->decode(ids, SpecialTokenPolicy::kKeep));
  }
  {  // kRaise and bad ids: an error, and the state is unchanged.
    StreamDecoder d(*t, SpecialTokenPolicy::kRaise);
    CHECK_EQ(*d.push(text_id(0xE4)), std::string());
    auto r = d.push(32);
    CHECK(!r.ok() && r.status().code() == ErrorCode::kInvalidArgument);
    auto o = d.push(kVocab);
    CHECK(!o.ok() && o.status().code() == ErrorCode::kOutOfRange);
    CHECK_EQ(d.pending_bytes(), size_t{1});
    CHECK_EQ(*d.push(text_id(0xB8)), std::string());
    CHECK_EQ(*d.push(text_id(0xAD)), zhong);
  }
  // Random token streams: pieces never split a character, and pieces + flush equal the
  // one-shot decode of the text tokens (kIgnore) or of everything (kKeep).
  std::mt19937 rng(11);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int> ids(rng() % 16);
    for (int& id : ids) {
      const unsigned r = rng() % 10;
      if (r == 0) {
        id = static_cast<int>(rng() % kNumSpecial);
      } else if (r < 5) {
        id = text_id(0x80 + static_cast<int>(rng() % 0x80));  // lone bytes of multi-byte characters
      } else {
        id = static_cast<int>(kNumSpecial + rng() % (kVocab - kNumSpecial));
      }
    }
    std::vector<int> text_only;
    for (int id : ids)
      if (!t->is_control(id)) text_only.push_back(id);
    StreamDecoder ignore(*t);
    std::vector<std::string> pieces;
    CHECK_EQ(stream_all(ignore, ids, &pieces), *t->decode(text_only));
    for (const std::string& piece : pieces) CHECK(text::is_valid_utf8(piece.data(), piece.size()));
    StreamDecoder keep(*t, SpecialTokenPolicy::kKeep);
    CHECK_EQ(stream_all(keep, ids), *t->decode(ids, SpecialTokenPolicy::kKeep));
  }
}

void expect_load_error(const std::string& json, const std::string& message,
                       ErrorCode code = ErrorCode::kInvalidProgram) {
  auto r = Tokenizer::from_json(json, "bad/tekken.json");
  CHECK(!r.ok());
  if (r.ok()) return;
  CHECK(r.status().code() == code);
  if (!contains(r.status().message(), message) || !contains(r.status().message(), "bad/tekken.json")) {
    std::fprintf(stderr, "expected '%s' in: %s\n", message.c_str(), r.status().message().c_str());
    CHECK(false);
  }
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  CHECK(at != std::string::npos);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

void test_load_errors(const std::string& scratch) {
  // Files: missing, a directory, truncated.
  auto missing = Tokenizer::load(scratch + "/no_such_tekken.json");
  CHECK(!missing.ok() && missing.status().code() == ErrorCode::kNotFound);
  CHECK(contains(missing.status().message(), "no_such_tekken.json"));
  auto dir = Tokenizer::load(scratch);
  CHECK(!dir.ok() && dir.status().code() == ErrorCode::kInvalidArgument);
  const std::string good = tekken_json();
  const std::string path = scratch + "/test_tokenizer_truncated.json";
  {
    std::ofstream f(path, std::ios::binary);
    f << good.substr(0, good.size() / 2);
  }
  auto truncated = Tokenizer::load(path);
  CHECK(!truncated.ok() && truncated.status().code() == ErrorCode::kInvalidProgram);
  CHECK(contains(truncated.status().message(), path));
  CHECK(contains(truncated.status().message(), "unexpected end of file"));
  {
    std::ofstream f(path, std::ios::binary);
    f << good;
  }
  CHECK(Tokenizer::load(path).ok());
  std::remove(path.c_str());

  expect_load_error("[]", "top level must be an object");
  expect_load_error("{}", "missing field 'config'");
  expect_load_error(replace_once(good, R"("version": "v7")", R"("version": 7)"), "'config.version' must be a string");
  expect_load_error(replace_once(good, R"("version": "v7")", R"("version": "seven")"), "must look like \"v7\"");
  expect_load_error(replace_once(good, "\"default_vocab_size\": 308", "\"default_vocab_size\": \"308\""),
                    "'config.default_vocab_size' must be a number, got a string");
  expect_load_error(replace_once(good, "\"default_vocab_size\": 308", "\"default_vocab_size\": 308.5"),
                    "must be an integer, got 308.5");
  expect_load_error(replace_once(good, "\"default_vocab_size\": 308", "\"default_vocab_size\": 400"),
                    "'vocab' has 268 entries, fewer than the 360");
  expect_load_error(replace_once(good, "\"default_num_special_tokens\": 40", "\"default_num_special_tokens\": 400"),
                    "exceeds config.default_vocab_size");
  const std::string fewer_specials =
      replace_once(good, "\"default_num_special_tokens\": 40", "\"default_num_special_tokens\": 30");
  expect_load_error(replace_once(fewer_specials, "\"default_vocab_size\": 308", "\"default_vocab_size\": 298"),
                    "'special_tokens' has 34 entries, more than");
  {
    TekkenOptions o;
    const std::string s = tekken_json(o);
    const size_t begin = s.find("\"vocab\": [") + 10;
    const size_t end = s.find("]", begin);
    expect_load_error(s.substr(0, begin) + s.substr(end), "'vocab' is empty");
  }
  expect_load_error(replace_once(good, R"("rank": 5, "token_bytes")", R"("rank": 6, "token_bytes")"),
                    "'vocab[5].rank' is 6");
  expect_load_error(replace_once(good, R"("token_bytes": "BQ==")", R"("token_bytes": "BQ")"),
                    "'vocab[5].token_bytes' is not valid base64");
  expect_load_error(replace_once(good, R"("token_bytes": "BQ==")", R"("token_bytes": "Bg==")"),
                    "'vocab[5]' must be the single byte 5");
  expect_load_error(replace_once(good, base64("hell"), base64("he")), "'vocab[258].token_bytes' duplicates");
  expect_load_error(replace_once(good, R"("token_str": "[STREAMING_PAD]")", R"("token_str": "<s>")"),
                    "special token '<s>' appears twice");
  expect_load_error(replace_once(good, R"("token_str": "[STREAMING_PAD]")", R"("token_str": 32)"),
                    "'special_tokens[32].token_str' must be a string");
  expect_load_error(replace_once(good, R"({"rank": 3, "token_str")", R"({"rank": 4, "token_str")"),
                    "'special_tokens[3].rank' is 4");
  {
    TekkenOptions o;
    o.special_tokens = false;
    o.version = "v11";
    expect_load_error(tekken_json(o), "missing 'special_tokens'");
    o = TekkenOptions();
    o.pattern = R"((?i:'s|'t)|\p{L}+)";
    expect_load_error(tekken_json(o), "config.pattern: unsupported regex construct");
  }
  expect_load_error(replace_once(good, R"("sampling_rate": 16000)", R"("sampling_rate": -1)"),
                    "'audio.sampling_rate' is -1");
  expect_load_error(replace_once(good, R"("transcription_delay_ms": 480)", R"("transcription_delay_ms": 500)"),
                    "multiple of the frame duration");
  expect_load_error(replace_once(good, R"("streaming_n_left_pad_tokens": 32)",
                                 R"("streaming_n_left_pad_tokens": null)"),
                    "missing field 'audio.streaming_n_left_pad_tokens'");
  expect_load_error(replace_once(good, R"(, "audio_encoding_config": {"num_mel_bins": 128,)",
                                 R"(, "audio_encoding_config": {"num_mel_bins": true,)"),
                    "'audio.audio_encoding_config.num_mel_bins' must be a number, got a boolean");
  expect_load_error(good + " x", "after the top-level value");
}

// Random code points encode and decode back (on any pattern path), never crashing.
std::string random_utf8(std::mt19937& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    uint32_t cp;
    switch (rng() % 4) {
      case 0: cp = rng() % 0x80; break;
      case 1: cp = rng() % 0x800; break;
      case 2: cp = rng() % 0x10000; break;
      default: cp = rng() % 0x110000; break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
    text::append_utf8(s, cp);
  }
  return s;
}

void test_robustness() {
  auto t = tiny();
  if (!t) return;
  std::mt19937 rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    const std::string s = random_utf8(rng, rng() % 80);
    auto ids = t->encode(s);
    CHECK(ids.ok());
    if (ids.ok()) CHECK_EQ(*t->decode(*ids), s);
    std::string bytes = s;
    for (char& c : bytes)
      if (rng() % 8 == 0) c = static_cast<char>(rng());
    auto lossy = t->encode_bytes(bytes);
    CHECK(lossy.ok());
    if (lossy.ok()) CHECK_EQ(*t->decode(*lossy), replaced(bytes));
  }
  // Damaged files load or fail cleanly.
  const std::string good = tekken_json();
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = good.substr(0, rng() % (good.size() + 1));
    if (trial % 2) {
      bad = good;
      static const char kNoise[] = "{}[]\\\":,0 ae\x80";
      for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = kNoise[rng() % (sizeof kNoise - 1)];
    }
    auto r = Tokenizer::from_json(bad, "fuzz.json");
    if (!r.ok()) CHECK(contains(r.status().message(), "fuzz.json"));
  }
  // Random patterns compile or fail cleanly; the ones that compile split any text into
  // ordered, non-empty, non-overlapping pieces.
  const char* atoms[] = {"\\p{L}", "\\p{N}", "\\s", "\\S", "[^\\r\\n]", "a", " ", ".", "(?!\\S)", "(?=a)",
                         "+", "*", "?", "{1,2}", "|", "(", ")", "[", "]", "\\", "{"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string pattern;
    for (int k = static_cast<int>(rng() % 8); k >= 0; --k) pattern += atoms[rng() % (sizeof atoms / sizeof *atoms)];
    auto p = text::Pretokenizer::compile(pattern);
    if (!p.ok()) continue;
    const std::string s = random_utf8(rng, 30);
    size_t last = 0;
    p->split(s, [&](size_t b, size_t e) {
      CHECK(b >= last && e > b && e <= s.size());
      last = e;
    });
  }
}

// One Tokenizer, used from several threads at once.
void test_threads() {
  auto t = tiny();
  if (!t) return;
  const std::string s = "hello world \xE4\xB8\xAD\xE4\xB8\xAD hellx  \n\n";
  const std::vector<int> expected = *t->encode(s);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      bool all = true;
      for (int i = 0; i < 200; ++i) {
        auto ids = t->encode(s);
        all = all && ids.ok() && *ids == expected && *t->decode(*ids) == s;
      }
      ok[k] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (int v : ok) CHECK(v);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scratch = argc > 1 ? argv[1] : ".";
  test_utf8();
  test_base64();
  test_json();
  test_unicode();
  test_pretokenizer();
  test_bpe();
  test_load_and_lookup();
  test_encode_decode();
  test_stream_decoder();
  test_load_errors(scratch);
  test_robustness();
  test_threads();
  TEST_MAIN_RETURN();
}
