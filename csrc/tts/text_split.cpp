#include "tts/text_split.h"


namespace voxtral::tts {

namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && is_space(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
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

// Byte offsets where pieces end: after a mark followed by whitespace (or the end), after a
// mark that needs no space (CJK full-width punctuation), and at newlines.
std::vector<std::string_view> cut(std::string_view s, std::initializer_list<std::string_view> spaced,
                                  std::initializer_list<std::string_view> unspaced, bool at_newlines) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    size_t end = std::string_view::npos;
    if (at_newlines && s[i] == '\n') {
      end = i + 1;
    } else if (starts_with_any(s, i, unspaced, &len)) {
      end = i + len;
    } else if (starts_with_any(s, i, spaced, &len)) {
      size_t j = i + len;
      // closing quotes and brackets stay with their sentence: `"Stop!" she said.`
      while (j < s.size() && (s[j] == '"' || s[j] == '\'' || s[j] == ')' || s[j] == ']')) ++j;
      if (j == s.size() || is_space(static_cast<unsigned char>(s[j]))) end = j;
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
      for (size_t i = 0; i + 1 < piece.size(); ++i) {
        if (is_space(static_cast<unsigned char>(piece[i])) && !is_space(static_cast<unsigned char>(piece[i + 1]))) {
          parts.push_back(piece.substr(start, i + 1 - start));
          start = i + 1;
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
