#include "text/utf8.h"

#include <cstring>

namespace voxtral::text {

namespace {

// Length of the all-ASCII prefix of p[0..n), 8 bytes at a time.
size_t ascii_prefix(const unsigned char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ULL) break;
  }
  while (i < n && p[i] < 0x80) ++i;
  return i;
}

}  // namespace

void append_utf8_replacing(std::string& out, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0, run = 0;  // p[run..i) is valid and not yet appended
  while (i < n) {
    i += ascii_prefix(p + i, n - i);
    if (i >= n) break;
    const Utf8Char c = next_utf8(p + i, n - i);
    if (c.step == Utf8Step::kValid) {
      i += c.length;
      continue;
    }
    out.append(data + run, i - run);
    out.append(kReplacementUtf8, 3);
    i += c.length;  // kIncomplete: length == n - i
    run = i;
  }
  out.append(data + run, n - run);
}

bool is_valid_utf8(const char* data, size_t n, size_t* error_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < n) {
    i += ascii_prefix(p + i, n - i);
    if (i >= n) break;
    const Utf8Char c = next_utf8(p + i, n - i);
    if (c.step != Utf8Step::kValid) {
      if (error_offset) *error_offset = i;
      return false;
    }
    i += c.length;
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace voxtral::text
