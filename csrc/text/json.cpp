#include "text/json.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "text/utf8.h"

namespace voxtral::text {

const char* JsonValue::type_name() const {
  switch (type_) {
    case Type::kNull: return "null";
    case Type::kBool: return "a boolean";
    case Type::kNumber: return "a number";
    case Type::kString: return "a string";
    case Type::kArray: return "an array";
    case Type::kObject: return "an object";
  }
  return "?";
}

bool JsonValue::to_int64(int64_t* out) const {
  if (type_ != Type::kNumber) return false;
  const std::string_view t = text_;
  size_t i = (!t.empty() && t[0] == '-') ? 1 : 0;
  if (i >= t.size()) return false;
  uint64_t v = 0;
  const uint64_t limit = i ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  for (; i < t.size(); ++i) {
    if (t[i] < '0' || t[i] > '9') return false;  // fraction or exponent
    const unsigned d = static_cast<unsigned>(t[i] - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = t[0] == '-' ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

double JsonValue::to_double() const {
  if (type_ != Type::kNumber) return 0.0;
  std::string s(text_);
  return std::strtod(s.c_str(), nullptr);  // the grammar was checked while parsing
}

const JsonValue* JsonValue::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (size_t i = keys_.size(); i-- > 0;) {
    if (keys_[i] == key) return &items_[i];
  }
  return nullptr;
}

class JsonParser {
 public:
  JsonParser(std::string_view text, std::deque<std::string>& unescaped, const std::string& source)
      : p_(text.data()), begin_(text.data()), end_(text.data() + text.size()), unescaped_(unescaped), source_(source) {}

  Status parse(JsonValue& root) {
    skip_ws();
    VOXTRAL_RETURN_IF_ERROR(parse_value(root, 0));
    skip_ws();
    if (p_ != end_) return error("unexpected data after the top-level value");
    return Status::Ok();
  }

 private:
  Status error(const std::string& what) const { return error_at(p_, what); }

  Status error_at(const char* at, const std::string& what) const {
    size_t line = 1, column = 1;
    for (const char* q = begin_; q < at && q < end_; ++q) {
      if (*q == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(*q) & 0xC0) != 0x80) {
        ++column;
      }
    }
    std::string where = at >= end_ ? "unexpected end of file (truncated?)"
                                   : "line " + std::to_string(line) + ", column " + std::to_string(column);
    return Status(ErrorCode::kInvalidProgram,
                  source_ + ": invalid JSON at " + where + (at >= end_ && what.empty() ? "" : ": " + what));
  }

  Status unexpected(const char* expected) const {
    if (p_ >= end_) return error_at(p_, std::string("expected ") + expected);
    const unsigned char c = static_cast<unsigned char>(*p_);
    std::string got = c >= 0x20 && c < 0x7F ? std::string("'") + static_cast<char>(c) + "'"
                                            : "byte 0x" + hex2(c);
    return error(std::string("expected ") + expected + ", got " + got);
  }

  static std::string hex2(unsigned c) {
    const char* digits = "0123456789abcdef";
    return {digits[(c >> 4) & 15], digits[c & 15]};
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool consume_literal(const char* lit) {
    const size_t n = std::strlen(lit);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, lit, n) != 0) return false;
    p_ += n;
    return true;
  }

  Status parse_value(JsonValue& v, int depth) {
    if (p_ >= end_) return unexpected("a value");
    switch (*p_) {
      case '{': return parse_object(v, depth + 1);
      case '[': return parse_array(v, depth + 1);
      case '"': v.type_ = JsonValue::Type::kString; return parse_string(v.text_);
      case 't':
        if (!consume_literal("true")) return unexpected("a value");
        v.type_ = JsonValue::Type::kBool;
        v.bool_ = true;
        return Status::Ok();
      case 'f':
        if (!consume_literal("false")) return unexpected("a value");
        v.type_ = JsonValue::Type::kBool;
        v.bool_ = false;
        return Status::Ok();
      case 'n':
        if (!consume_literal("null")) return unexpected("a value");
        v.type_ = JsonValue::Type::kNull;
        return Status::Ok();
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return parse_number(v);
        return unexpected("a value");
    }
  }

  Status parse_number(JsonValue& v) {
    const char* start = p_;
    auto digits = [&] {
      const char* s = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ > s;
    };
    if (*p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
      if (p_ < end_ && *p_ >= '0' && *p_ <= '9') return error("numbers cannot have leading zeros");
    } else if (!digits()) {
      return unexpected("a digit");
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return unexpected("a digit after '.'");
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return unexpected("a digit in the exponent");
    }
    v.type_ = JsonValue::Type::kNumber;
    v.text_ = std::string_view(start, static_cast<size_t>(p_ - start));
    return Status::Ok();
  }

  Status read_hex4(uint32_t* out) {
    if (end_ - p_ < 4) {
      p_ = end_;
      return unexpected("4 hex digits");
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return unexpected("a hex digit in \\u escape");
    }
    *out = v;
    return Status::Ok();
  }

  // At the opening quote. Plain strings point into the text; others are decoded.
  Status parse_string(std::string_view& out) {
    const char* open = p_++;
    const char* start = p_;
    // Fast scan: printable ASCII without escapes.
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++p_;
    }
    if (p_ < end_ && *p_ == '"') {
      out = std::string_view(start, static_cast<size_t>(p_ - start));
      ++p_;
      return Status::Ok();
    }
    bool escaped = false;
    std::string decoded(start, static_cast<size_t>(p_ - start));
    while (true) {
      if (p_ >= end_) return error_at(p_, "unterminated string starting at " + position(open));
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        break;
      }
      if (c < 0x20) return error("control character (byte 0x" + hex2(c) + ") in a string: escape it");
      if (c >= 0x80) {
        const Utf8Char u = next_utf8(reinterpret_cast<const unsigned char*>(p_), static_cast<size_t>(end_ - p_));
        if (u.step != Utf8Step::kValid) return error("invalid UTF-8 in a string");
        decoded.append(p_, u.length);
        p_ += u.length;
        continue;
      }
      if (c != '\\') {
        decoded.push_back(static_cast<char>(c));
        ++p_;
        continue;
      }
      escaped = true;
      ++p_;
      if (p_ >= end_) return error_at(p_, "unterminated string starting at " + position(open));
      const char e = *p_++;
      switch (e) {
        case '"': decoded.push_back('"'); break;
        case '\\': decoded.push_back('\\'); break;
        case '/': decoded.push_back('/'); break;
        case 'b': decoded.push_back('\b'); break;
        case 'f': decoded.push_back('\f'); break;
        case 'n': decoded.push_back('\n'); break;
        case 'r': decoded.push_back('\r'); break;
        case 't': decoded.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          VOXTRAL_RETURN_IF_ERROR(read_hex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char* save = p_;
            p_ += 2;
            uint32_t lo = 0;
            VOXTRAL_RETURN_IF_ERROR(read_hex4(&lo));
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p_ = save;  // a lone high surrogate followed by another escape
            }
          }
          append_utf8(decoded, cp);  // lone surrogates become U+FFFD
          break;
        }
        default:
          --p_;
          return error(std::string("invalid escape '\\") + (e >= 0x20 && e < 0x7F ? std::string(1, e) : "?") + "'");
      }
    }
    if (!escaped) {  // non-ASCII but no escapes: the text itself is the value
      out = std::string_view(start, static_cast<size_t>(p_ - 1 - start));
      return Status::Ok();
    }
    unescaped_.push_back(std::move(decoded));
    out = unescaped_.back();
    return Status::Ok();
  }

  std::string position(const char* at) const {
    size_t line = 1, column = 1;
    for (const char* q = begin_; q < at; ++q) {
      if (*q == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(*q) & 0xC0) != 0x80) {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  }

  Status check_depth(int depth) const {
    if (depth > JsonDocument::kMaxDepth)
      return error("nested deeper than " + std::to_string(JsonDocument::kMaxDepth) + " levels");
    return Status::Ok();
  }

  Status parse_array(JsonValue& v, int depth) {
    VOXTRAL_RETURN_IF_ERROR(check_depth(depth));
    v.type_ = JsonValue::Type::kArray;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return Status::Ok();
    }
    while (true) {
      v.items_.emplace_back();
      VOXTRAL_RETURN_IF_ERROR(parse_value(v.items_.back(), depth));
      skip_ws();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        skip_ws();
        continue;
      }
      if (p_ < end_ && *p_ == ']') {
        ++p_;
        return Status::Ok();
      }
      return unexpected("',' or ']'");
    }
  }

  Status parse_object(JsonValue& v, int depth) {
    VOXTRAL_RETURN_IF_ERROR(check_depth(depth));
    v.type_ = JsonValue::Type::kObject;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return Status::Ok();
    }
    while (true) {
      if (p_ >= end_ || *p_ != '"') return unexpected("a string key");
      std::string_view key;
      VOXTRAL_RETURN_IF_ERROR(parse_string(key));
      skip_ws();
      if (p_ >= end_ || *p_ != ':') return unexpected("':'");
      ++p_;
      skip_ws();
      v.keys_.push_back(key);
      v.items_.emplace_back();
      VOXTRAL_RETURN_IF_ERROR(parse_value(v.items_.back(), depth));
      skip_ws();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        skip_ws();
        continue;
      }
      if (p_ < end_ && *p_ == '}') {
        ++p_;
        return Status::Ok();
      }
      return unexpected("',' or '}'");
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  std::deque<std::string>& unescaped_;
  const std::string& source_;
};

Result<JsonDocument> JsonDocument::parse(std::string text, const std::string& source) {
  JsonDocument doc;
  doc.storage_ = std::make_unique<Storage>();
  doc.storage_->text = std::move(text);
  JsonParser parser(doc.storage_->text, doc.storage_->unescaped, source);
  VOXTRAL_RETURN_IF_ERROR(parser.parse(doc.storage_->root));
  return doc;
}

}  // namespace voxtral::text
