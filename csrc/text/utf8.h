// UTF-8 decoding with CPython's error handling: bytes.decode("utf-8", "replace") turns
// each maximal subpart of an ill-formed sequence into one U+FFFD (Unicode's
// "substitution of maximal subparts"), which is what mistral_common's decode returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace voxtral::text {

inline constexpr char kReplacementUtf8[] = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8Step : uint8_t {
  kValid,       // `length` bytes encode `cp`
  kInvalid,     // the first `length` bytes (a maximal subpart, >= 1) are replaced by one U+FFFD
  kIncomplete,  // all bytes left (fewer than needed) are a valid prefix cut off by the end
};

struct Utf8Char {
  Utf8Step step;
  uint8_t length;
  uint32_t cp;  // kValid only
};

// Decodes the character at p[0..n), n >= 1.
inline Utf8Char next_utf8(const unsigned char* p, size_t n) {
  const unsigned b0 = p[0];
  if (b0 < 0x80) return {Utf8Step::kValid, 1, b0};
  size_t need;
  unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return {Utf8Step::kInvalid, 1, 0};  // 80..C1, F5..FF never start a character
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) return {Utf8Step::kIncomplete, static_cast<uint8_t>(n), 0};
    const unsigned b = p[i];
    if (b < lo || b > hi) return {Utf8Step::kInvalid, static_cast<uint8_t>(i), 0};
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {Utf8Step::kValid, static_cast<uint8_t>(need), cp};
}

// Appends p[0..n) to `out` as bytes.decode("utf-8", "replace") would produce it.
void append_utf8_replacing(std::string& out, const char* p, size_t n);

// True if p[0..n) is well-formed UTF-8; otherwise *error_offset is the first bad byte.
bool is_valid_utf8(const char* p, size_t n, size_t* error_offset = nullptr);

// Appends the UTF-8 encoding of `cp` (U+FFFD for surrogates and values past U+10FFFF).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace voxtral::text
