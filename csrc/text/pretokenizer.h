// The pre-tokenizer: splits text into pieces with the regex of tekken.json's
// config.pattern, exactly as tiktoken (Rust regex / fancy_regex) finds its matches:
// leftmost-first alternation, greedy quantifiers with backtracking, and text no
// alternative matches skipped.
//
// Supported family (every Tekken file so far, and cl100k-like patterns):
//   pattern     := alternative ('|' alternative)*          at most 64 alternatives
//   alternative := item+                                   at most 8 items, cannot match ""
//   item        := atom quantifier? | '(?=' atom ')' | '(?!' atom ')'
//   atom        := '[' '^'? (escape | char)+ ']' | escape | char | '.'
//   escape      := \p{X} \P{X} \pX \PX (X a General_Category such as L, Lu, N, M, Zs)
//                  | \s \S \d \D | \r \n \t \f \v | \xHH \x{H..} | \ + ASCII punctuation
//   quantifier  := ? | * | + | {m} | {m,} | {m,n}           greedy only
// Anything else (groups, ranges, anchors, \w, \b, lazy or possessive quantifiers,
// flags such as (?i)) is refused with an error naming it.
//
// Character classes are evaluated per "kind": the General_Category of a code point
// (with White_Space Cc apart), or the code point itself when the pattern names it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/unicode.h"
#include "voxtral/status.h"

namespace voxtral::text {

class Pretokenizer {
 public:
  // InvalidProgram ("config.pattern: ...") for a pattern outside the family.
  static Result<Pretokenizer> compile(std::string_view pattern);

  // Calls fn(begin, end) with the byte range of each piece of `text`, in order.
  // `text` must be valid UTF-8.
  template <typename Fn>
  void split(std::string_view text, Fn&& fn) const {
    Cursor c{reinterpret_cast<const unsigned char*>(text.data()), text.size()};
    size_t pos = 0;
    while (pos < c.n) {
      size_t len;
      const unsigned kind = kind_at(c, pos, &len);
      uint64_t candidates = first_[kind];
      size_t end = kNoMatch;
      while (candidates) {
        const unsigned a = static_cast<unsigned>(__builtin_ctzll(candidates));
        candidates &= candidates - 1;
        end = match(c, alternatives_[a], 0, pos);
        if (end != kNoMatch) break;
      }
      if (end == kNoMatch) {  // tiktoken drops text that no alternative matches
        pos += len;
        continue;
      }
      fn(pos, end);
      pos = end;
    }
  }

 private:
  static constexpr size_t kNoMatch = ~size_t{0};
  static constexpr unsigned kMaxKinds = 64;

  struct Item {
    uint64_t mask;  // kinds that match
    uint32_t min, max;
    enum Type : uint8_t { kRepeat, kLookahead, kNegativeLookahead } type;
  };
  using Alternative = std::vector<Item>;
  struct Cursor {
    const unsigned char* s;
    size_t n;
  };

  unsigned kind_at(const Cursor& c, size_t pos, size_t* len) const {
    const unsigned b = c.s[pos];
    if (b < 0x80) {
      *len = 1;
      return ascii_kind_[b];
    }
    uint32_t cp;
    if (b < 0xE0) {
      *len = 2;
      cp = ((b & 0x1Fu) << 6) | (c.s[pos + 1] & 0x3Fu);
    } else if (b < 0xF0) {
      *len = 3;
      cp = ((b & 0x0Fu) << 12) | ((c.s[pos + 1] & 0x3Fu) << 6) | (c.s[pos + 2] & 0x3Fu);
    } else {
      *len = 4;
      cp = ((b & 0x07u) << 18) | ((c.s[pos + 1] & 0x3Fu) << 12) | ((c.s[pos + 2] & 0x3Fu) << 6) |
           (c.s[pos + 3] & 0x3Fu);
    }
    if (!non_ascii_literals_.empty()) {
      for (size_t i = 0; i < non_ascii_literals_.size(); ++i)
        if (non_ascii_literals_[i] == cp) return non_ascii_literal_kinds_[i];
    }
    return categories_(cp);
  }

  // End of the match of items[i..] at `pos`, or kNoMatch (backtracking, greedy).
  size_t match(const Cursor& c, const Alternative& items, size_t i, size_t pos) const {
    if (i == items.size()) return pos;
    const Item& item = items[i];
    size_t len;
    if (item.type != Item::kRepeat) {
      const bool hit = pos < c.n && ((item.mask >> kind_at(c, pos, &len)) & 1);
      if (hit != (item.type == Item::kLookahead)) return kNoMatch;
      return match(c, items, i + 1, pos);
    }
    size_t p = pos;
    uint32_t count = 0;
    while (count < item.max && p < c.n && ((item.mask >> kind_at(c, p, &len)) & 1)) {
      p += len;
      ++count;
    }
    if (count < item.min) return kNoMatch;
    if (i + 1 == items.size()) return p;
    while (true) {
      const size_t end = match(c, items, i + 1, p);
      if (end != kNoMatch) return end;
      if (count == item.min) return kNoMatch;
      do --p; while ((c.s[p] & 0xC0) == 0x80);  // back one character
      --count;
    }
  }

  std::vector<Alternative> alternatives_;
  std::array<uint64_t, kMaxKinds> first_{};  // kind -> alternatives that can start with it
  std::array<uint8_t, 128> ascii_kind_{};
  std::vector<uint32_t> non_ascii_literals_;
  std::vector<uint8_t> non_ascii_literal_kinds_;
  CategoryTable categories_{};

  friend class PatternCompiler;
};

}  // namespace voxtral::text
