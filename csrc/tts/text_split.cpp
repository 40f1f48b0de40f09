#include "tts/text_split.h"

#include <cstdint>

namespace voxtral::tts {

namespace {

// A character as the splitter sees it: its code point and length in bytes. Bytes that are not
// UTF-8 read as one U+FFFD each (the runner refuses such text; the splitter only must not
// take them for spaces or marks).
struct Char {
  uint32_t cp;
  size_t len;
};

Char char_at(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : c >= 0xF8 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return {0xFFFD, 1};
  uint32_t cp = n == 1 ? c : c & (0x7Fu >> n);
  for (size_t k = 1; k < n; ++k) {
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {0xFFFD, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  // an overlong form ("\xC0\xA0" for a space) or a code point past U+10FFFF is no character
  static constexpr uint32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kLeast[n] || cp > 0x10FFFF) return {0xFFFD, 1};
  return {cp, n};
}

// The character that ends at s[e - 1] (its lead byte at most 3 bytes back).
Char char_before(std::string_view s, size_t e) {
  size_t b = e - 1;
  while (b > 0 && e - b < 4 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  const Char c = char_at(s, b);
  return c.len == e - b ? c : Char{0xFFFD, 1};
}

enum class Space { kNone, kBreaking, kNoBreak };

// Unicode's White_Space characters, and U+FEFF: a byte order mark pasted in with the text is
// not to be spoken either. No-break spaces are trimmed like the others, but the writer asked
// for no break there ("Mr.\u00A0Smith", "10\u00A0kg"): no sentence or word ends at one.
Space space_kind(uint32_t cp) {
  if (cp == 0xA0 || cp == 0x2007 || cp == 0x202F || cp == 0xFEFF) return Space::kNoBreak;
  if (cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
      cp == 0x2028 || cp == 0x2029 || cp == 0x205F || cp == 0x3000) {
    return Space::kBreaking;
  }
  return Space::kNone;
}

// Length of the whitespace character at s[i] (0: none).
size_t space_at(std::string_view s, size_t i) {
  const Char c = char_at(s, i);
  return space_kind(c.cp) == Space::kNone ? 0 : c.len;
}

size_t breaking_space_at(std::string_view s, size_t i) {
  const Char c = char_at(s, i);
  return space_kind(c.cp) == Space::kBreaking ? c.len : 0;
}

size_t no_break_space_at(std::string_view s, size_t i) {
  const Char c = char_at(s, i);
  return space_kind(c.cp) == Space::kNoBreak ? c.len : 0;
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  for (size_t n; b < e && (n = space_at(s, b)) > 0;) b += n;
  while (e > b) {
    const Char c = char_before(s, e);
    if (e - c.len < b || space_kind(c.cp) == Space::kNone) break;
    e -= c.len;
  }
  return s.substr(b, e - b);
}

// Line breaks end a piece wherever they are: \n, NEL, LINE and PARAGRAPH SEPARATOR.
size_t line_break_at(std::string_view s, size_t i) {
  if (s[i] == '\n') return 1;
  const Char c = char_at(s, i);
  return c.cp == 0x85 || c.cp == 0x2028 || c.cp == 0x2029 ? c.len : 0;
}

bool starts_with_any(std::string_view s, size_t i, std::initializer_list<std::string_view> marks, size_t* len) {
  for (std::string_view m : marks) {
    if (s.substr(i, m.size()) == m) {
      *len = m.size();
      return true;
    }
  }
  return false;
}

// Closing quotes and brackets, which after a mark belong to the sentence or clause they close.
// Full-width ones (CJK) need no space after them, like the full-width marks. “ and ‘ close
// only in Western text (German „Ja.“ Dann): after 。 they open the next quote (你好。“走吧”).
size_t closer_at(std::string_view s, size_t i, bool western, bool* full_width) {
  size_t len = 0;
  *full_width = false;
  if (starts_with_any(s, i, {"\"", "'", ")", "]", "\xE2\x80\x9D", "\xE2\x80\x99", "\xC2\xBB", "\xC2\xAB",
                             "\xE2\x80\xBA", "\xE2\x80\xB9"},  // ” ’ » « › ‹
                      &len)) {
    return len;
  }
  if (western && starts_with_any(s, i, {"\xE2\x80\x9C", "\xE2\x80\x98"}, &len)) return len;  // “ ‘
  if (starts_with_any(s, i,
                      {"\xE3\x80\x8D", "\xE3\x80\x8F", "\xEF\xBC\x89", "\xE3\x80\x91", "\xE3\x80\x95",  // 」』）】〕
                       "\xE3\x80\x8B", "\xE3\x80\x89", "\xE3\x80\x97", "\xE3\x80\x99", "\xE3\x80\x9B",  // 》〉〗〙〛
                       "\xEF\xBC\xBD", "\xEF\xBD\x9D", "\xEF\xBD\xA3", "\xEF\xBC\x82", "\xEF\xBC\x87",  // ］｝｣＂＇
                       "\xE3\x80\x9E", "\xE3\x80\x9F"},                                                  // 〞〟
                      &len)) {
    *full_width = true;
    return len;
  }
  return 0;
}

// Byte offsets where pieces end: after a mark followed by whitespace (or the end), after a
// mark that needs no space (CJK full-width punctuation), and at line breaks. Closing quotes and
// brackets after the mark stay with it: `"Stop!" she said.`, 「はい。」と言った。
std::vector<std::string_view> cut(std::string_view s, std::initializer_list<std::string_view> spaced,
                                  std::initializer_list<std::string_view> unspaced, bool at_newlines) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    size_t end = std::string_view::npos;
    const size_t line_break = at_newlines ? line_break_at(s, i) : 0;
    const bool full_width = line_break == 0 && starts_with_any(s, i, unspaced, &len);
    if (line_break > 0) {
      end = i + line_break;
    } else if (full_width || starts_with_any(s, i, spaced, &len)) {
      size_t j = i + len;
      bool needs_space = !full_width;
      for (;;) {
        // French sets a no-break space inside its guillemets: « Oui.\u00A0» Puis.
        size_t k = j;
        for (size_t n; k < s.size() && (n = no_break_space_at(s, k)) > 0;) k += n;
        bool wide = false;
        const size_t n = k < s.size() ? closer_at(s, k, /*western=*/needs_space, &wide) : 0;
        if (n == 0) break;
        j = k + n;
        needs_space = needs_space && !wide;
      }
      if (!needs_space || j == s.size() || breaking_space_at(s, j) > 0) end = j;
    }
    if (end == std::string_view::npos) {
      i += len > 0 ? len : 1;
      continue;
    }
    out.push_back(s.substr(start, end - start));
    start = i = end;
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

class Splitter {
 public:
  Splitter(const std::function<Result<int>(std::string_view)>& count, int max_tokens)
      : count_(count), max_tokens_(max_tokens) {}

  // Appends `piece` (trimmed, non-empty) as one or more utterances of at most max_tokens.
  Status add_fitting(std::string_view piece, int level, std::vector<std::string>& out) {
    piece = trim(piece);
    if (piece.empty()) return Status::Ok();
    VOXTRAL_ASSIGN_OR_RETURN(int n, count_(piece));
    if (n <= max_tokens_) {
      out.emplace_back(piece);
      return Status::Ok();
    }
    std::vector<std::string_view> parts;
    if (level == 0) {  // clauses
      parts = cut(piece, {",", ";", ":", "\xE2\x80\x94", "\xE2\x80\x93"}, {"\xEF\xBC\x8C", "\xE3\x80\x81", "\xEF\xBC\x9B", "\xEF\xBC\x9A"}, false);
    } else if (level == 1) {  // words, each with the spaces after it
      size_t start = 0;
      for (size_t i = 0; i < piece.size();) {
        const size_t n = breaking_space_at(piece, i);
        i += n > 0 ? n : 1;
        if (n > 0 && i < piece.size() && space_at(piece, i) == 0) {
          parts.push_back(piece.substr(start, i - start));
          start = i;
        }
      }
      parts.push_back(piece.substr(start));
    } else {  // halves, at a character boundary
      size_t mid = piece.size() / 2;
      while (mid > 0 && (static_cast<unsigned char>(piece[mid]) & 0xC0) == 0x80) --mid;
      if (mid == 0) {  // the middle falls in the first character: cut after it instead
        mid = 1;
        while (mid < piece.size() && (static_cast<unsigned char>(piece[mid]) & 0xC0) == 0x80) ++mid;
      }
      if (mid >= piece.size()) {  // one character over budget (max_tokens >= 4 >= its byte tokens)
        out.emplace_back(piece);
        return Status::Ok();
      }
      parts = {piece.substr(0, mid), piece.substr(mid)};
    }
    if (parts.size() <= 1) return add_fitting(piece, level + 1, out);
    return pack(parts, max_tokens_, level + 1, out);
  }

  // Joins consecutive parts while they fit `budget` tokens; a part over max_tokens alone is
  // split further at `level`.
  Status pack(const std::vector<std::string_view>& parts, int budget, int level, std::vector<std::string>& out) {
    std::string current;
    auto flush = [&]() {
      std::string_view t = trim(current);
      if (!t.empty()) out.emplace_back(t);
      current.clear();
    };
    for (std::string_view part : parts) {
      if (trim(part).empty()) {
        current += part;
        continue;
      }
      std::string joined = current + std::string(part);
      VOXTRAL_ASSIGN_OR_RETURN(int n, count_(trim(joined)));
      if (n <= budget) {
        current = std::move(joined);
        continue;
      }
      flush();
      VOXTRAL_ASSIGN_OR_RETURN(int alone, count_(trim(part)));
      if (alone <= budget) {
        current = std::string(part);
      } else {
        VOXTRAL_RETURN_IF_ERROR(add_fitting(part, level, out));
      }
    }
    flush();
    return Status::Ok();
  }

 private:
  const std::function<Result<int>(std::string_view)>& count_;
  const int max_tokens_;
};

}  // namespace

Result<std::vector<std::string>> split_utterances(std::string_view text,
                                                  const std::function<Result<int>(std::string_view)>& count_tokens,
                                                  int max_tokens, int target_tokens) {
  if (max_tokens < 4 || target_tokens < 1 || target_tokens > max_tokens) {
    return Status(ErrorCode::kInvalidArgument, "split_utterances: need 4 <= max_tokens and 1 <= target_tokens <= max_tokens");
  }
  const std::vector<std::string_view> sentences =
      cut(text, {".", "!", "?", "\xE2\x80\xA6"}, {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F"}, true);
  std::vector<std::string> out;
  Splitter splitter(count_tokens, max_tokens);
  VOXTRAL_RETURN_IF_ERROR(splitter.pack(sentences, target_tokens, 0, out));
  return out;
}

}  // namespace voxtral::tts
