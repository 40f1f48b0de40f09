// The text-to-speech runtime's parts that need no model: bf16 conversion (voxtral/bf16.h),
// the session's random generator (tts/noise.h), long text split into utterances
// (tts/text_split.h), and the WAV writer of voxtral-speak (cli/wav.h). Whole sessions are
// compared with Python in tests/python/test_tts_speak_cpp.py.
//
// argv[1] (optional): a scratch directory for files.
#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "cli/wav.h"
#include "tts/noise.h"
#include "tts/text_split.h"
#include "voxtral/bf16.h"
#include "voxtral/tts.h"

using voxtral::ErrorCode;
using voxtral::Result;
using voxtral::Status;

// CHECK with a message that says which case failed (loops over many inputs).
#define CHECK_MSG(cond, msg)                                                           \
  do {                                                                                 \
    if (!(cond)) ::voxtral_test::fail(__FILE__, __LINE__, std::string(#cond) + ": " + (msg)); \
  } while (0)

namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llX", static_cast<unsigned long long>(v));
  return buf;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// ---------------------------------------------------------------------------------------
// bf16

bool is_nan_bits(uint32_t b) { return (b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu) != 0; }

// Round to nearest, ties to even, stated as a comparison of the dropped half with one half
// of a bf16 step (the header adds and shifts instead): the same rule reached another way.
// A carry out of the mantissa is the correct next value up, inf included.
uint16_t reference_bf16(uint32_t b) {
  if (is_nan_bits(b)) return 0x7FC0;
  uint16_t kept = static_cast<uint16_t>(b >> 16);
  const uint32_t dropped = b & 0xFFFFu;
  if (dropped > 0x8000u || (dropped == 0x8000u && (kept & 1u))) ++kept;
  return kept;
}

void test_bf16_cases() {
  struct Case {
    uint32_t in;
    uint16_t out;
    const char* what;
  };
  const Case cases[] = {
      {0x3F800000, 0x3F80, "1.0, exact"},
      {0x3F808000, 0x3F80, "tie: down to the even 0x3F80"},
      {0x3F818000, 0x3F82, "tie: up to the even 0x3F82"},
      {0x3F807FFF, 0x3F80, "just below a tie"},
      {0x3F808001, 0x3F81, "just above a tie"},
      {0x3F817FFF, 0x3F81, "just below a tie (odd below)"},
      {0x3F818001, 0x3F82, "just above a tie (odd below)"},
      {0xBF808000, 0xBF80, "negative tie, down in magnitude"},
      {0xBF818000, 0xBF82, "negative tie, up in magnitude"},
      {0xBF808001, 0xBF81, "negative, just above a tie"},
      {0x00000001, 0x0000, "smallest subnormal -> +0"},
      {0x80000001, 0x8000, "smallest negative subnormal -> -0"},
      {0x00008000, 0x0000, "subnormal tie, even below"},
      {0x00018000, 0x0002, "subnormal tie, even above"},
      {0x00008001, 0x0001, "subnormal just above a tie: no flush to zero"},
      {0x007F7FFF, 0x007F, "large subnormal stays subnormal"},
      {0x007F8000, 0x0080, "subnormal tie up into the smallest bf16 normal"},
      {0x007FFFFF, 0x0080, "largest subnormal rounds up into the normal range"},
      {0x7F7F7FFF, 0x7F7F, "just below the top tie: the largest finite bf16"},
      {0x7F7F8000, 0x7F80, "top tie (odd below) -> inf"},
      {0x7F7FFFFF, 0x7F80, "largest finite float -> inf"},
      {0xFF7FFFFF, 0xFF80, "most negative finite float -> -inf"},
      {0x7F800000, 0x7F80, "+inf"},
      {0xFF800000, 0xFF80, "-inf"},
      {0x00000000, 0x0000, "+0"},
      {0x80000000, 0x8000, "-0"},
      {0x7FC00000, 0x7FC0, "quiet NaN"},
      {0xFFC00000, 0x7FC0, "negative quiet NaN: sign dropped"},
      {0x7FC00001, 0x7FC0, "quiet NaN with payload"},
      {0x7F800001, 0x7FC0, "signalling NaN that plain rounding would turn into inf"},
      {0xFF800001, 0x7FC0, "negative signalling NaN that plain rounding would turn into -inf"},
      {0x7FA00000, 0x7FC0, "signalling NaN"},
      {0x7FBFFFFF, 0x7FC0, "signalling NaN, all payload bits"},
      {0x7F808000, 0x7FC0, "signalling NaN at a tie"},
      {0x7FFF8000, 0x7FC0, "NaN whose rounding carry would wrap into the sign (-0)"},
      {0x7FFFFFFF, 0x7FC0, "NaN, all ones"},
      {0xFFFFFFFF, 0x7FC0, "negative NaN, all ones"},
  };
  for (const Case& c : cases) {
    const uint16_t got = voxtral::float_to_bf16(float_of(c.in));
    CHECK_MSG(got == c.out, std::string(c.what) + ": " + hex(c.in) + " -> " + hex(got) + ", expected " + hex(c.out));
    CHECK_MSG(reference_bf16(c.in) == c.out, std::string("the test's reference disagrees: ") + c.what);
  }
  CHECK_EQ(voxtral::float_to_bf16(-0.0f), uint16_t{0x8000});
  CHECK_EQ(voxtral::float_to_bf16(std::numeric_limits<float>::max()), uint16_t{0x7F80});
  CHECK_EQ(voxtral::float_to_bf16(std::numeric_limits<float>::denorm_min()), uint16_t{0x0000});
  CHECK_EQ(voxtral::float_to_bf16(std::numeric_limits<float>::infinity()), uint16_t{0x7F80});
  CHECK_EQ(voxtral::float_to_bf16(-std::numeric_limits<float>::infinity()), uint16_t{0xFF80});
  CHECK_EQ(voxtral::float_to_bf16(std::numeric_limits<float>::quiet_NaN()), uint16_t{0x7FC0});
  CHECK_EQ(voxtral::float_to_bf16(std::numeric_limits<float>::signaling_NaN()), uint16_t{0x7FC0});
}

void test_bf16_every_pattern() {
  // bf16 -> float is exact (the bits move up), and every non-NaN bf16 survives the way back.
  int bad_exact = 0, bad_round_trip = 0;
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = voxtral::bf16_to_float(static_cast<uint16_t>(b));
    if (bits_of(f) != b << 16) ++bad_exact;
    const uint16_t back = voxtral::float_to_bf16(f);
    const bool nan = is_nan_bits(b << 16);
    if (nan != std::isnan(f) || back != (nan ? 0x7FC0 : b)) ++bad_round_trip;
  }
  CHECK_EQ(bad_exact, 0);
  CHECK_EQ(bad_round_trip, 0);

  // Every upper half with the dropped halves around the rounding boundary (and a few
  // scattered ones) against the reference: 65536 x 10 inputs, every exponent and sign.
  const uint32_t lows[] = {0x0000, 0x0001, 0x4000, 0x7FFE, 0x7FFF, 0x8000, 0x8001, 0xC000, 0xFFFE, 0xFFFF};
  int bad = 0;
  uint32_t first_bad = 0;
  for (uint32_t hi = 0; hi <= 0xFFFF; ++hi) {
    for (uint32_t lo : lows) {
      const uint32_t b = (hi << 16) | lo;
      if (voxtral::float_to_bf16(float_of(b)) != reference_bf16(b) && bad++ == 0) first_bad = b;
    }
  }
  CHECK_MSG(bad == 0, std::to_string(bad) + " mismatches, first at " + hex(first_bad));

  // The array forms are the scalar ones element by element.
  std::vector<float> in;
  for (uint32_t b : {0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0x7F800001u, 0x80000000u, 0x007FFFFFu, 0x40490FDBu}) {
    in.push_back(float_of(b));
  }
  std::vector<uint16_t> half(in.size());
  voxtral::float_to_bf16(in.data(), half.data(), in.size());
  std::vector<float> out(in.size());
  voxtral::bf16_to_float(half.data(), out.data(), half.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK_EQ(half[i], voxtral::float_to_bf16(in[i]));
    CHECK_EQ(bits_of(out[i]), static_cast<uint32_t>(half[i]) << 16);
  }
}

// ---------------------------------------------------------------------------------------
// NoiseGenerator: the facts sheet's recipe written out again, step by step, to compare with.

constexpr uint64_t kZeroSeedState = 0x12345678ABCDEF01ull;

struct ReferenceNoise {
  uint64_t x;
  explicit ReferenceNoise(uint64_t seed) : x(seed == 0 ? kZeroSeedState : seed) {}

  uint64_t next() {  // xorshift64, shifts 13, 7, 17
    uint64_t v = x;
    v = v ^ (v << 13);
    v = v ^ (v >> 7);
    v = v ^ (v << 17);
    x = v;
    return v;
  }
  float uniform() {
    const uint64_t top53 = next() >> 11;
    return static_cast<float>(top53) * (1.0f / 9007199254740992.0f);  // 2^-53
  }
  float normal() {
    float u1 = uniform();
    while (u1 < 1e-30f) u1 = uniform();
    const float u2 = uniform();
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
  }
};

// The state before `y`: undoes x ^= x << 17, x ^= x >> 7, x ^= x << 13 in reverse order.
// Each x ^= x << s is undone by iterating x = y ^ (x << s), which fixes s more bits a round.
uint64_t undo_left(uint64_t y, int s) {
  uint64_t x = y;
  for (int i = 0; i < 64 / s + 1; ++i) x = y ^ (x << s);
  return x;
}
uint64_t undo_right(uint64_t y, int s) {
  uint64_t x = y;
  for (int i = 0; i < 64 / s + 1; ++i) x = y ^ (x >> s);
  return x;
}
uint64_t previous_state(uint64_t y) { return undo_left(undo_right(undo_left(y, 17), 7), 13); }

void test_noise() {
  // A value worked by hand from state 1: 1 ^ 1<<13 = 0x2001; ^ >>7 = 0x2041; ^ <<17 = 0x40822041.
  CHECK_EQ(voxtral::tts::NoiseGenerator(1).next_u64(), uint64_t{0x40822041});
  CHECK_EQ(ReferenceNoise(1).next(), uint64_t{0x40822041});

  const uint64_t seeds[] = {1, 42, 0, kZeroSeedState, std::numeric_limits<uint64_t>::max()};
  for (uint64_t seed : seeds) {
    const std::string where = "seed " + hex(seed);
    {
      voxtral::tts::NoiseGenerator g(seed);
      ReferenceNoise r(seed);
      int bad = 0;
      for (int i = 0; i < 100; ++i) bad += g.next_u64() != r.next();
      CHECK_MSG(bad == 0, where + ": raw states");
    }
    {
      voxtral::tts::NoiseGenerator g(seed);
      ReferenceNoise r(seed);
      int bad = 0;
      for (int i = 0; i < 100; ++i) bad += bits_of(g.uniform()) != bits_of(r.uniform());
      CHECK_MSG(bad == 0, where + ": uniforms");
    }
    voxtral::tts::NoiseGenerator g(seed);
    ReferenceNoise r(seed);
    std::vector<float> expected;
    int bad = 0, first = -1;
    for (int i = 0; i < 100; ++i) {
      const float want = r.normal();
      const float got = g.normal();
      expected.push_back(want);
      if (bits_of(got) != bits_of(want) && bad++ == 0) first = i;
      CHECK_MSG(std::isfinite(want), where + ": a normal value is not finite");
    }
    CHECK_MSG(bad == 0, where + ": " + std::to_string(bad) + " normal values differ, first #" + std::to_string(first));
    // The library's exported tts_noise() is the same generator (what a session draws).
    const std::vector<float> lib = voxtral::tts_noise(seed, 100);
    int bad_lib = 0;
    for (size_t i = 0; i < 100; ++i) bad_lib += bits_of(lib[i]) != bits_of(expected[i]);
    CHECK_MSG(bad_lib == 0, where + ": tts_noise() differs");
  }

  // Seed 0 is the fixed state 0x12345678ABCDEF01 (xorshift would stay at 0 forever).
  {
    voxtral::tts::NoiseGenerator zero(0), fixed(kZeroSeedState);
    int bad = 0;
    for (int i = 0; i < 100; ++i) bad += bits_of(zero.normal()) != bits_of(fixed.normal());
    CHECK_EQ(bad, 0);
  }

  // Inputs made to order with the inverse step (checked first).
  for (uint64_t y : {uint64_t{1}, uint64_t{5}, kZeroSeedState, ~uint64_t{0}, uint64_t{0x8000000000000000ull}}) {
    ReferenceNoise r(previous_state(y));
    CHECK_MSG(r.next() == y, "previous_state(" + hex(y) + ")");
  }
  // A state below 2^11 draws u1 = 0 exactly (every other uniform is >= 2^-53 > 1e-30, so this
  // is the only draw that the guard redraws): it is thrown away, and the next two uniforms
  // are u1 and u2 in that order.
  {
    const uint64_t seed = previous_state(5);
    CHECK_EQ(bits_of(voxtral::tts::NoiseGenerator(seed).uniform()), bits_of(0.0f));
    ReferenceNoise after(5);  // the states after the zero draw
    const float u1 = after.uniform();
    const float u2 = after.uniform();
    const float want = sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
    const float swapped = sqrtf(-2.0f * logf(u2)) * cosf(6.2831853071795864f * u1);
    CHECK(bits_of(want) != bits_of(swapped));  // so the order is observable
    voxtral::tts::NoiseGenerator g(seed);
    const float got = g.normal();
    CHECK_MSG(bits_of(got) == bits_of(want), "after a zero draw: got " + std::to_string(got) + ", expected " +
                                                 std::to_string(want));
    CHECK(std::isfinite(got));
    CHECK_EQ(bits_of(voxtral::tts_noise(seed, 1)[0]), bits_of(want));
  }
  // The top 53 bits all ones round up to exactly 1.0f (documented); log(1) makes that normal 0.
  {
    const uint64_t seed = previous_state(~uint64_t{0});
    CHECK_EQ(bits_of(voxtral::tts::NoiseGenerator(seed).uniform()), bits_of(1.0f));
    CHECK_EQ(voxtral::tts::NoiseGenerator(seed).normal(), 0.0f);
  }
}

// ---------------------------------------------------------------------------------------
// split_utterances

using Counter = std::function<Result<int>(std::string_view)>;

bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The whitespace the splitter trims, written out as bytes: ASCII's, NEL, NBSP, OGHAM SPACE
// MARK, U+2000..U+200A, LINE and PARAGRAPH SEPARATOR, NARROW NBSP, MEDIUM MATHEMATICAL SPACE,
// IDEOGRAPHIC SPACE, and U+FEFF (a byte order mark).
const std::vector<std::string> kUnicodeSpaces = {
    "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82",
    "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88",
    "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
    "\xE3\x80\x80", "\xEF\xBB\xBF"};

// Bytes of the whitespace character at s[i] (0: none).
size_t space_len(std::string_view s, size_t i) {
  if (is_ascii_space(static_cast<unsigned char>(s[i]))) return 1;
  for (const std::string& w : kUnicodeSpaces) {
    if (s.substr(i, w.size()) == w) return w.size();
  }
  return 0;
}

bool ends_with_space(std::string_view s) {
  if (!s.empty() && is_ascii_space(static_cast<unsigned char>(s.back()))) return true;
  for (const std::string& w : kUnicodeSpaces) {
    if (s.size() >= w.size() && s.substr(s.size() - w.size()) == w) return true;
  }
  return false;
}

// Token counters simple enough to reason about: ceil(bytes / 4) (about English's rate),
// one per byte (a byte-level worst case), one per whitespace-separated word.
const Counter kQuarterBytes = [](std::string_view s) -> Result<int> { return static_cast<int>((s.size() + 3) / 4); };
const Counter kBytes = [](std::string_view s) -> Result<int> { return static_cast<int>(s.size()); };
const Counter kWords = [](std::string_view s) -> Result<int> {
  int n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool space = is_ascii_space(c);
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
};

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string without_space(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = space_len(s, i);
    if (n == 0) out += s[i];
    i += n > 0 ? n : 1;
  }
  return out;
}

std::string shown(const std::vector<std::string>& parts) {
  std::string out = "[";
  for (const std::string& p : parts) out += (out.size() > 1 ? ", \"" : "\"") + p + "\"";
  return out + "]";
}

std::vector<std::string> split(std::string_view text, const Counter& count, int max_tokens, int target_tokens) {
  auto r = voxtral::tts::split_utterances(text, count, max_tokens, target_tokens);
  CHECK_MSG(r.ok(), "split_utterances(\"" + std::string(text) + "\"): " + r.status().to_string());
  return r.ok() ? *r : std::vector<std::string>{};
}

// The header's promises for any input: non-empty, trimmed, within max_tokens, whole UTF-8
// characters, and nothing but whitespace lost or reordered.
void check_contract(std::string_view text, const Counter& count, int max_tokens, int target_tokens) {
  const std::vector<std::string> parts = split(text, count, max_tokens, target_tokens);
  const std::string where = "\"" + std::string(text.substr(0, 60)) + "\" max " + std::to_string(max_tokens) +
                            " target " + std::to_string(target_tokens) + " -> " + shown(parts).substr(0, 300);
  std::string joined;
  for (const std::string& p : parts) {
    CHECK_MSG(!p.empty(), where);
    if (p.empty()) continue;
    const bool trimmed = space_len(p, 0) == 0 && !ends_with_space(p);
    CHECK_MSG(trimmed, "not trimmed: \"" + p + "\" in " + where);
    const Result<int> n = count(p);
    CHECK_MSG(n.ok() && *n <= max_tokens,
              "\"" + p + "\" has " + std::to_string(n.ok() ? *n : -1) + " tokens in " + where);
    CHECK_MSG(valid_utf8(p), "cut inside a character: \"" + p + "\" in " + where);
    joined += p;
  }
  CHECK_MSG(without_space(joined) == without_space(text), "text lost or reordered: " + where);
}

void check_split(std::string_view text, const Counter& count, int max_tokens, int target_tokens,
                 const std::vector<std::string>& expected) {
  const std::vector<std::string> got = split(text, count, max_tokens, target_tokens);
  CHECK_MSG(got == expected, "\"" + std::string(text) + "\": got " + shown(got) + ", expected " + shown(expected));
  check_contract(text, count, max_tokens, target_tokens);
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

void test_split_basics() {
  for (const char* blank : {"", " ", "\n", " \t\n\r\f\v  \n\n"}) {
    auto r = voxtral::tts::split_utterances(blank, kQuarterBytes, 64, 16);
    CHECK(r.ok() && r->empty());
  }
  // Unicode's whitespace (and a byte order mark) is whitespace too: text of it alone gives no
  // utterances, which the runner reports as empty text, as for "   ".
  for (const std::string& w : kUnicodeSpaces) {
    auto r = voxtral::tts::split_utterances(" " + w + w + "\n", kQuarterBytes, 64, 16);
    CHECK_MSG(r.ok() && r->empty(), "blank of \"" + w + "\": " + (r.ok() ? shown(*r) : r.status().to_string()));
    check_split(w + "Hello world." + w, kQuarterBytes, 64, 16, {"Hello world."});
  }
  check_split("Hello world.", kQuarterBytes, 64, 16, {"Hello world."});
  check_split("  \n Hello world.  \t\n", kQuarterBytes, 64, 16, {"Hello world."});
  check_split("no final mark", kQuarterBytes, 64, 16, {"no final mark"});

  // Bad limits are refused, not split badly.
  for (auto [max_tokens, target] : {std::pair<int, int>{3, 1}, {8, 0}, {8, 9}, {0, 0}, {-1, 1}}) {
    auto r = voxtral::tts::split_utterances("Some text.", kQuarterBytes, max_tokens, target);
    CHECK_MSG(!r.ok() && r.status().code() == ErrorCode::kInvalidArgument,
              "max " + std::to_string(max_tokens) + " target " + std::to_string(target));
  }
  // The counter's errors come back as they are (the tokenizer's).
  const Counter failing = [](std::string_view s) -> Result<int> {
    if (s.find("boom") != std::string_view::npos) return Status(ErrorCode::kInvalidArgument, "counter: boom");
    return static_cast<int>(s.size());
  };
  auto r = voxtral::tts::split_utterances("Fine. Then boom. More.", failing, 64, 8);
  CHECK(!r.ok() && r.status().code() == ErrorCode::kInvalidArgument && r.status().message() == "counter: boom");
}

void test_split_packing() {
  // Whole sentences share an utterance while they fit target_tokens (words here).
  const std::string text = "One two. Three four. Five six. Seven eight.";
  check_split(text, kWords, 8, 1, {"One two.", "Three four.", "Five six.", "Seven eight."});
  check_split(text, kWords, 8, 4, {"One two. Three four.", "Five six. Seven eight."});
  check_split(text, kWords, 8, 5, {"One two. Three four.", "Five six. Seven eight."});
  check_split(text, kWords, 8, 6, {"One two. Three four. Five six.", "Seven eight."});
  check_split(text, kWords, 8, 8, {text});
  // A sentence over the target but within max_tokens is one utterance of its own.
  check_split("Hi. One two three four five six. Bye.", kWords, 8, 2, {"Hi.", "One two three four five six.", "Bye."});
  // Sentence ends: . ! ? and the ellipsis character, each before whitespace; newlines.
  check_split("Wait! Really? Yes\xE2\x80\xA6 Fine.", kWords, 8, 1, {"Wait!", "Really?", "Yes\xE2\x80\xA6", "Fine."});
  check_split("Wait... what?", kWords, 8, 1, {"Wait...", "what?"});
  check_split("First line\nSecond line\r\nThird", kWords, 8, 1, {"First line", "Second line", "Third"});
}

void test_split_not_at_inner_dots() {
  // A dot is a sentence end only before whitespace or the end of the text.
  check_split("Pi is 3.14 and e is 2.72 roughly.", kWords, 16, 1, {"Pi is 3.14 and e is 2.72 roughly."});
  check_split("Use e.g.x here. Next.", kWords, 16, 1, {"Use e.g.x here.", "Next."});
  check_split("Version 1.2.3 shipped. It works.", kWords, 16, 1, {"Version 1.2.3 shipped.", "It works."});
  check_split("Mail a.b@c.de now.", kWords, 16, 1, {"Mail a.b@c.de now."});
}

void test_split_closing_quotes() {
  // Quotes and brackets after the mark belong to the sentence they close.
  check_split("He said \"Stop.\" Then he left.", kWords, 16, 1, {"He said \"Stop.\"", "Then he left."});
  check_split("(See above.) Next one.", kWords, 16, 1, {"(See above.)", "Next one."});
  check_split("'Yes!' she said.", kWords, 16, 1, {"'Yes!'", "she said."});
  check_split("Is it [done?]) Yes.", kWords, 16, 1, {"Is it [done?])", "Yes."});
  check_split("He shouted \"No!\"", kWords, 16, 1, {"He shouted \"No!\""});
  // Curly quotes and guillemets too: ” ’ » « › ‹, and “ ‘ where they close (German „Ja.“).
  check_split("He said \xE2\x80\x9CHi.\xE2\x80\x9D  Then left.", kWords, 16, 1,
              {"He said \xE2\x80\x9CHi.\xE2\x80\x9D", "Then left."});
  check_split("\xE2\x80\x98Yes!\xE2\x80\x99 she said.", kWords, 16, 1,
              {"\xE2\x80\x98Yes!\xE2\x80\x99", "she said."});
  check_split("\xC2\xABNon !\xC2\xBB Il part.", kWords, 16, 1, {"\xC2\xABNon !\xC2\xBB", "Il part."});
  check_split("\xC2\xBBJa.\xC2\xAB Dann.", kWords, 16, 1, {"\xC2\xBBJa.\xC2\xAB", "Dann."});
  check_split("\xE2\x80\xB9Oui?\xE2\x80\xBA Puis.", kWords, 16, 1, {"\xE2\x80\xB9Oui?\xE2\x80\xBA", "Puis."});
  check_split("\xE2\x80\x9EJa.\xE2\x80\x9C Dann.", kWords, 16, 1, {"\xE2\x80\x9EJa.\xE2\x80\x9C", "Dann."});
  check_split("Wait\xE2\x80\xA6\xE2\x80\x9D (she said.) Go.", kWords, 16, 1,
              {"Wait\xE2\x80\xA6\xE2\x80\x9D", "(she said.)", "Go."});
  // French sets a no-break space inside guillemets: the closing one still belongs to the
  // sentence ( «\u00A0Oui.\u00A0» Puis. ).
  check_split("\xC2\xAB\xC2\xA0Oui.\xC2\xA0\xC2\xBB Puis.", kBytes, 64, 1,
              {"\xC2\xAB\xC2\xA0Oui.\xC2\xA0\xC2\xBB", "Puis."});
  // A closing quote with no space after it ends no sentence (`Stop.”Go on.`).
  check_split("Stop.\xE2\x80\x9DGo on. Fine.", kWords, 16, 1, {"Stop.\xE2\x80\x9DGo on.", "Fine."});
  // Clause marks keep their closing quotes as well.
  check_split("\xE2\x80\x9C" "a b c d,\xE2\x80\x9D e f g h", kWords, 4, 4,
              {"\xE2\x80\x9C" "a b c d,\xE2\x80\x9D", "e f g h"});
}

void test_split_cjk_closing_brackets() {
  // After a full-width mark the closing brackets and quotes stay with the sentence, and the
  // sentence ends after them (no space needed): 「こんにちは。」次の文。
  const std::string hello = "\xE3\x80\x8C\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF"  // 「こんにちは
                            "\xE3\x80\x82\xE3\x80\x8D";                                          // 。」
  const std::string next = "\xE6\xAC\xA1\xE3\x81\xAE\xE6\x96\x87\xE3\x80\x82";  // 次の文。
  check_split(hello + next, kBytes, 64, 1, {hello, next});
  // each closer: 」』）】〕》〉〗〙〛］｝｣＂＇〞〟 and the ASCII and curly ones
  for (const char* closer :
       {"\xE3\x80\x8D", "\xE3\x80\x8F", "\xEF\xBC\x89", "\xE3\x80\x91", "\xE3\x80\x95", "\xE3\x80\x8B",
        "\xE3\x80\x89", "\xE3\x80\x97", "\xE3\x80\x99", "\xE3\x80\x9B", "\xEF\xBC\xBD", "\xEF\xBD\x9D",
        "\xEF\xBD\xA3", "\xEF\xBC\x82", "\xEF\xBC\x87", "\xE3\x80\x9E", "\xE3\x80\x9F", "\"", "'", ")", "]",
        "\xE2\x80\x9D", "\xE2\x80\x99", "\xC2\xBB", "\xC2\xAB"}) {
    for (const char* mark : {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F"}) {  // 。！？
      const std::string first = "\xE4\xBD\xA0\xE5\xA5\xBD" + std::string(mark) + closer;  // 你好。」
      check_split(first + next, kBytes, 64, 1, {first, next});
    }
  }
  // Nested closers, and a Western mark inside full-width brackets (no space after 」).
  const std::string nested =
      "\xE3\x80\x8C\xE3\x80\x8E\xE3\x81\xAF\xE3\x81\x84\xE3\x80\x82\xE3\x80\x8F\xE3\x80\x8D";  // 「『はい。』」
  check_split(nested + next, kBytes, 64, 1, {nested, next});
  check_split("\xE3\x80\x8COK.\xE3\x80\x8D" + next, kBytes, 64, 1, {"\xE3\x80\x8COK.\xE3\x80\x8D", next});
  // Chinese closes a quote with ” after 。 but opens one with “:
  // 他说：“你好。”然后走了。 -> 他说：“你好。” | 然后走了。   你好。“走吧”他说。 -> 你好。 | “走吧”他说。
  const std::string said =
      "\xE4\xBB\x96\xE8\xAF\xB4\xEF\xBC\x9A\xE2\x80\x9C\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE2\x80\x9D";
  const std::string left = "\xE7\x84\xB6\xE5\x90\x8E\xE8\xB5\xB0\xE4\xBA\x86\xE3\x80\x82";
  check_split(said + left, kBytes, 64, 1, {said, left});
  const std::string go = "\xE2\x80\x9C\xE8\xB5\xB0\xE5\x90\xA7\xE2\x80\x9D\xE4\xBB\x96\xE8\xAF\xB4\xE3\x80\x82";
  check_split("\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82" + go, kBytes, 64, 1, {"\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82", go});
  // A full-width clause mark keeps its closer too: 「はい、」と言った -> 「はい、」 | と言った
  const std::string yes = "\xE3\x80\x8C\xE3\x81\xAF\xE3\x81\x84\xE3\x80\x81\xE3\x80\x8D";
  const std::string said_ja = "\xE3\x81\xA8\xE8\xA8\x80\xE3\x81\xA3\xE3\x81\x9F";
  check_split(yes + said_ja, kBytes, 16, 16, {yes, said_ja});
}

void test_split_unicode_spaces() {
  // Unicode's spaces end a sentence after a mark, as ASCII's do, and are trimmed away.
  check_split("One.\xE3\x80\x80Two.\xE2\x80\x83Three.\xE2\x80\x8A\xEF\xBB\xBF" "Four.", kBytes, 64, 1,
              {"One.", "Two.", "Three.", "Four."});
  // LINE SEPARATOR, PARAGRAPH SEPARATOR and NEL break lines like \n.
  check_split("A\xE2\x80\xA8" "B\xE2\x80\xA9" "C\xC2\x85" "D", kBytes, 64, 1, {"A", "B", "C", "D"});
  // A no-break space asks for no break: no sentence ends at one (Mr.\u00A0Smith).
  check_split("Mr.\xC2\xA0Smith left. Bye.", kBytes, 64, 1, {"Mr.\xC2\xA0Smith left.", "Bye."});
  check_split("Dr.\xE2\x80\xAFNo. Yes.", kBytes, 64, 1, {"Dr.\xE2\x80\xAFNo.", "Yes."});
  // A sentence too long splits at Unicode spaces between words (not at no-break ones: there
  // it is cut between characters).
  check_split("aaaaa\xE3\x80\x80" "b", kBytes, 5, 5, {"aaaaa", "b"});
  check_split("aaaaa\xE2\x80\x82" "b", kBytes, 5, 5, {"aaaaa", "b"});
  check_split("aaaaa\xC2\xA0" "b", kBytes, 5, 5, {"aaaa", "a\xC2\xA0" "b"});
  // Bytes that are not UTF-8 are never taken for spaces: a lone A0 or 85 (NBSP's and NEL's
  // last byte) and the overlong C0 A0 (a space's forbidden two-byte form) stay.
  for (const std::string bad : {"\xA0", "\x85", "\xC0\xA0", "\xE3\x80"}) {
    auto r = voxtral::tts::split_utterances(bad + "a" + bad, kBytes, 64, 16);
    CHECK_MSG(r.ok() && *r == std::vector<std::string>({bad + "a" + bad}), r.ok() ? shown(*r) : r.status().to_string());
  }
}

void test_split_cjk() {
  // Full-width marks end a sentence with no space after them.
  const std::string text = "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82"   // 你好。
                           "\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81"   // 世界！
                           "\xE5\x86\x8D\xE8\xA7\x81\xEF\xBC\x9F";  // 再见？
  check_split(text, kQuarterBytes, 8, 3,
              {"\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82", "\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81",
               "\xE5\x86\x8D\xE8\xA7\x81\xEF\xBC\x9F"});
  check_split(text, kQuarterBytes, 8, 8, {text});  // 27 bytes: 7 tokens, one utterance
  check_split("Hi\xE3\x80\x82" "Bye", kQuarterBytes, 8, 1, {"Hi\xE3\x80\x82", "Bye"});
  // Full-width clause marks (，) split a sentence that is too long, also with no space.
  const std::string clause = "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C";  // 你好，
  check_contract(repeat(clause, 20) + "\xE3\x80\x82", kQuarterBytes, 8, 4);
  const auto parts = split(repeat(clause, 20), kQuarterBytes, 8, 4);
  for (const std::string& p : parts) {
    // each utterance is whole clauses: it ends with the mark
    CHECK_MSG(p.size() >= 3 && p.compare(p.size() - 3, 3, "\xEF\xBC\x8C") == 0, "clause cut mid-way: \"" + p + "\"");
  }
}

void test_split_long_sentences() {
  // No punctuation at all: the sentence splits at spaces, max_tokens words at a time.
  std::string words;
  for (int i = 0; i < 50; ++i) words += (i ? " w" : "w") + std::to_string(i);
  std::vector<std::string> expected;
  for (int first = 0; first < 50; first += 8) {
    std::string u;
    for (int i = first; i < first + 8 && i < 50; ++i) u += (i > first ? " w" : "w") + std::to_string(i);
    expected.push_back(u);
  }
  check_split(words, kWords, 8, 4, expected);
  // Clause marks come before spaces.
  check_split("a b c d e, f g h i j, k l m n o", kWords, 8, 4, {"a b c d e,", "f g h i j,", "k l m n o"});
  check_split("a b c; d e f: g h \xE2\x80\x94 i j k", kWords, 4, 4, {"a b c;", "d e f:", "g h \xE2\x80\x94", "i j k"});
  check_contract(repeat("word ", 200), kQuarterBytes, 8, 4);
  check_contract(repeat("word, ", 200), kQuarterBytes, 8, 4);

  // One huge word: it splits between characters, never inside one.
  const std::string mixed = repeat("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80", 30);  // a é 中 😀: 1-4 bytes each
  check_contract(mixed, kBytes, 8, 4);
  check_contract(mixed, kBytes, 9, 9);
  check_contract(mixed, kQuarterBytes, 4, 2);
  check_contract("x" + mixed + " tail. More text here.", kQuarterBytes, 5, 3);
  check_contract(repeat("\xC3\xA9", 500), kBytes, 5, 5);
  check_contract(repeat("\xF0\x9F\x98\x80", 100), kBytes, 7, 1);
}

void test_split_contract_sweep() {
  // Every promise over a spread of texts and limits (limits of 8 bytes and up: a piece of two
  // characters then always fits; see test_split_two_character_piece for below that).
  const std::vector<std::string> texts = {
      "The quick brown fox jumps over the lazy dog. It was not amused! Was it? No.",
      "Short. " + repeat("A much longer sentence that goes on and on without an end in sight ", 6) + "done.",
      repeat("\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82", 15),
      "Line one\nLine two\n\n\nLine \"three.\" (Four.) " + repeat("x", 120) + " end",
      repeat("\xF0\x9F\x98\x80\xC3\xA9 ", 40) + repeat("\xE4\xB8\xAD", 60),
      "  leading and trailing   spaces ,  ; : \xE2\x80\x94 \xE2\x80\x93 marks  .  !  ?  ",
      "\xEF\xBB\xBF\xE3\x80\x80" +  // Unicode spaces, curly quotes, CJK brackets
          repeat("\xE2\x80\x9CHi.\xE2\x80\x9D\xC2\xA0\xE2\x80\x83 \xE3\x80\x8C\xE4\xBD\xA0\xE3\x80\x82\xE3\x80\x8D\xE2\x80\xA8", 12) +
          "\xC2\xA0\xE2\x80\xAF",
  };
  for (const std::string& t : texts) {
    for (int max_tokens : {8, 9, 13, 32, 200}) {
      for (int target : {1, max_tokens / 2, max_tokens}) {
        check_contract(t, kBytes, max_tokens, target);
        check_contract(t, kQuarterBytes, max_tokens, target);
        check_contract(t, kWords, max_tokens, target);
      }
    }
  }
}

// Behaviour found wrong while writing these tests, fixed since.
void test_split_regressions() {
  // Halving whose middle falls inside the first character cuts after that character:
  // "😀a" (5 byte tokens) with max_tokens = 4 comes back as "😀" and "a".
  {
    auto r = voxtral::tts::split_utterances("\xF0\x9F\x98\x80" "a", kBytes, 4, 4);
    CHECK(r.ok());
    CHECK(r.ok() && *r == std::vector<std::string>({"\xF0\x9F\x98\x80", "a"}));
  }
  // After a full-width mark the closing bracket stays with its sentence (it was cut off as the
  // next one's start): 「你好。」他说。 -> 「你好。」 | 他说。
  {
    const std::string text = "\xE3\x80\x8C\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE3\x80\x8D"  // 「你好。」
                             "\xE4\xBB\x96\xE8\xAF\xB4\xE3\x80\x82";                          // 他说。
    check_split(text, kBytes, 64, 1, {text.substr(0, 15), text.substr(15)});
  }
}

// ---------------------------------------------------------------------------------------
// WavWriter

std::vector<unsigned char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

uint32_t le32(const std::vector<unsigned char>& b, size_t at) {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (static_cast<uint32_t>(b[at + 3]) << 24);
}
uint16_t le16(const std::vector<unsigned char>& b, size_t at) {
  return static_cast<uint16_t>(b[at] | (b[at + 1] << 8));
}

// The file holds a mono float32 WAV whose samples are exactly `samples`.
void check_wav_file(const std::string& path, const std::vector<float>& samples, int rate) {
  const std::vector<unsigned char> b = file_bytes(path);
  const size_t n = samples.size();
  CHECK_EQ(b.size(), 58 + 4 * n);
  if (b.size() != 58 + 4 * n) return;
  CHECK(std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(&b[8], "WAVE", 4) == 0);
  CHECK_EQ(le32(b, 4), static_cast<uint32_t>(b.size() - 8));
  CHECK(std::memcmp(&b[12], "fmt ", 4) == 0);
  CHECK_EQ(le32(b, 16), 18u);
  CHECK_EQ(le16(b, 20), 3);  // IEEE float
  CHECK_EQ(le16(b, 22), 1);
  CHECK_EQ(le32(b, 24), static_cast<uint32_t>(rate));
  CHECK_EQ(le32(b, 28), static_cast<uint32_t>(rate) * 4);
  CHECK_EQ(le16(b, 32), 4);
  CHECK_EQ(le16(b, 34), 32);
  CHECK_EQ(le16(b, 36), 0);
  CHECK(std::memcmp(&b[38], "fact", 4) == 0);
  CHECK_EQ(le32(b, 42), 4u);
  CHECK_EQ(le32(b, 46), static_cast<uint32_t>(n));
  CHECK(std::memcmp(&b[50], "data", 4) == 0);
  CHECK_EQ(le32(b, 54), static_cast<uint32_t>(4 * n));
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad += le32(b, 58 + 4 * i) != bits_of(samples[i]);
  CHECK_EQ(bad, 0);
  // and the project's own reader takes it back (by value: it mixes channels in a sum that
  // starts at +0, so -0 comes back as +0, and NaN is not equal to itself)
  auto wav = voxtral::cli::read_wav(path);
  CHECK(wav.ok());
  if (!wav.ok()) return;
  CHECK_EQ(wav->sample_rate, rate);
  CHECK_EQ(wav->samples.size(), n);
  int bad_read = 0;
  for (size_t i = 0; i < n && i < wav->samples.size(); ++i) {
    if (std::isnan(samples[i]) ? !std::isnan(wav->samples[i]) : wav->samples[i] != samples[i]) {
      std::fprintf(stderr, "read_wav sample %zu: %a, wrote %a\n", i, wav->samples[i], samples[i]);
      ++bad_read;
    }
  }
  CHECK_EQ(bad_read, 0);
}

void test_wav_writer(const std::string& dir) {
  const std::string path = dir + "/test_tts_writer.wav";
  std::vector<float> all;
  {
    voxtral::cli::WavWriter w;
    CHECK(w.open(path, 24000).ok());
    CHECK(w.is_open());
    std::vector<float> a = {0.f,  -0.f, 0.5f, -1.f, 1.f, float_of(0x00000001) /* subnormal */,
                            float_of(0x7F800000) /* inf */, float_of(0x7FC00000) /* NaN */};
    std::vector<float> c(4801);
    for (size_t i = 0; i < c.size(); ++i) c[i] = std::sin(static_cast<float>(i) * 0.01f) * 0.9f;
    CHECK(w.append(a.data(), a.size()).ok());
    CHECK(w.append(nullptr, 0).ok());  // an empty chunk (a session may return one)
    CHECK(w.append(c.data(), c.size()).ok());
    all = a;
    all.insert(all.end(), c.begin(), c.end());
    CHECK_EQ(w.samples_written(), uint64_t{all.size()});
    CHECK(w.close().ok());
    CHECK(!w.is_open());
    auto again = w.close();
    CHECK(!again.ok() && again.code() == ErrorCode::kFailedPrecondition);
  }
  check_wav_file(path, all, 24000);

  {  // no samples: still a valid, empty file
    voxtral::cli::WavWriter w;
    CHECK(w.open(path, 16000).ok());
    CHECK(w.close().ok());
  }
  check_wav_file(path, {}, 16000);

  {  // dropped while open: the destructor patches the sizes
    voxtral::cli::WavWriter w;
    CHECK(w.open(path, 24000).ok());
    const float v[3] = {0.25f, -0.25f, 0.125f};
    CHECK(w.append(v, 3).ok());
  }
  check_wav_file(path, {0.25f, -0.25f, 0.125f}, 24000);

  voxtral::cli::WavWriter w;
  const float one = 1.f;
  Status s = w.append(&one, 1);
  CHECK(!s.ok() && s.code() == ErrorCode::kFailedPrecondition);
  const std::string missing = dir + "/no_such_dir/out.wav";
  s = w.open(missing, 24000);
  CHECK(!s.ok() && s.code() == ErrorCode::kIoError && s.message().find(missing) != std::string::npos);
  CHECK(!w.is_open());
  s = w.open(path, 0);
  CHECK(!s.ok() && s.code() == ErrorCode::kInvalidArgument);
  CHECK(w.open(path, 24000).ok());
  s = w.open(path, 24000);
  CHECK(!s.ok() && s.code() == ErrorCode::kFailedPrecondition);
  CHECK(w.close().ok());
  std::remove(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  test_bf16_cases();
  test_bf16_every_pattern();
  test_noise();
  test_split_basics();
  test_split_packing();
  test_split_not_at_inner_dots();
  test_split_closing_quotes();
  test_split_cjk();
  test_split_cjk_closing_brackets();
  test_split_unicode_spaces();
  test_split_long_sentences();
  test_split_contract_sweep();
  test_split_regressions();
  test_wav_writer(dir);
  TEST_MAIN_RETURN();
}
