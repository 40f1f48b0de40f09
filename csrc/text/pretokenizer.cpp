#include "text/pretokenizer.h"

#include <algorithm>

#include "text/utf8.h"

namespace voxtral::text {

namespace {

constexpr uint32_t kAllCategories = (1u << kNumCategories) - 1;

constexpr uint32_t bit(GeneralCategory c) { return 1u << c; }

constexpr uint32_t kLetter = bit(kLu) | bit(kLl) | bit(kLt) | bit(kLm) | bit(kLo);
constexpr uint32_t kMark = bit(kMn) | bit(kMc) | bit(kMe);
constexpr uint32_t kNumber = bit(kNd) | bit(kNl) | bit(kNo);
constexpr uint32_t kPunctuation = bit(kPc) | bit(kPd) | bit(kPs) | bit(kPe) | bit(kPi) | bit(kPf) | bit(kPo);
constexpr uint32_t kSymbol = bit(kSm) | bit(kSc) | bit(kSk) | bit(kSo);
constexpr uint32_t kSeparator = bit(kZs) | bit(kZl) | bit(kZp);
constexpr uint32_t kOther = bit(kCc) | bit(kCf) | bit(kCs) | bit(kCo) | bit(kCn) | bit(kCcWhiteSpace);
// Rust regex's \s is White_Space: all of Zs, Zl, Zp and some Cc (see unicode.h).
constexpr uint32_t kWhiteSpace = kSeparator | bit(kCcWhiteSpace);

struct PropertyName {
  const char* name;
  uint32_t mask;
};

constexpr PropertyName kProperties[] = {
    {"L", kLetter}, {"Lu", bit(kLu)}, {"Ll", bit(kLl)}, {"Lt", bit(kLt)}, {"Lm", bit(kLm)}, {"Lo", bit(kLo)},
    {"LC", bit(kLu) | bit(kLl) | bit(kLt)}, {"M", kMark}, {"Mn", bit(kMn)}, {"Mc", bit(kMc)}, {"Me", bit(kMe)},
    {"N", kNumber}, {"Nd", bit(kNd)}, {"Nl", bit(kNl)}, {"No", bit(kNo)}, {"P", kPunctuation},
    {"Pc", bit(kPc)}, {"Pd", bit(kPd)}, {"Ps", bit(kPs)}, {"Pe", bit(kPe)}, {"Pi", bit(kPi)},
    {"Pf", bit(kPf)}, {"Po", bit(kPo)}, {"S", kSymbol}, {"Sm", bit(kSm)}, {"Sc", bit(kSc)},
    {"Sk", bit(kSk)}, {"So", bit(kSo)}, {"Z", kSeparator}, {"Zs", bit(kZs)}, {"Zl", bit(kZl)},
    {"Zp", bit(kZp)}, {"C", kOther}, {"Cc", bit(kCc) | bit(kCcWhiteSpace)}, {"Cf", bit(kCf)},
    {"Cs", bit(kCs)}, {"Co", bit(kCo)}, {"Cn", bit(kCn)},
};

}  // namespace

class PatternCompiler {
 public:
  explicit PatternCompiler(std::string_view pattern) {
    const auto* p = reinterpret_cast<const unsigned char*>(pattern.data());
    size_t i = 0;
    while (i < pattern.size()) {
      const Utf8Char c = next_utf8(p + i, pattern.size() - i);
      if (c.step != Utf8Step::kValid) {
        valid_utf8_ = false;
        break;
      }
      cps_.push_back(c.cp);
      i += c.length;
    }
  }

  Result<Pretokenizer> compile() {
    if (!valid_utf8_) return error_at(cps_.size(), "the pattern is not valid UTF-8");
    if (cps_.empty()) return error_at(0, "the pattern is empty");
    while (true) {
      VOXTRAL_RETURN_IF_ERROR(parse_alternative());
      if (pos_ == cps_.size()) break;
      ++pos_;  // '|'
    }
    return build();
  }

 private:
  struct Class {
    uint32_t categories = 0;          // General_Category bits that match
    std::vector<uint32_t> literals;   // code points that match
    bool negated = false;
  };
  struct RawItem {
    Class cls;
    uint32_t min = 1, max = 1;
    Pretokenizer::Item::Type type = Pretokenizer::Item::kRepeat;
  };

  Status error_at(size_t at, const std::string& what) const {
    std::string near;
    for (size_t k = at; k < cps_.size() && k < at + 12; ++k) append_utf8(near, cps_[k]);
    return Status(ErrorCode::kInvalidProgram, "config.pattern: " + what + " (at character " + std::to_string(at) +
                                                  (near.empty() ? ", the end" : ": '" + near + "'") + ")");
  }
  Status unsupported(size_t at, const std::string& what) const {
    return error_at(at, "unsupported regex construct: " + what +
                            "; the tokenizer supports the Tekken pattern family (see csrc/text/pretokenizer.h)");
  }

  bool at_end() const { return pos_ >= cps_.size(); }
  uint32_t peek(size_t ahead = 0) const { return pos_ + ahead < cps_.size() ? cps_[pos_ + ahead] : 0xFFFFFFFF; }

  Status parse_alternative() {
    std::vector<RawItem> items;
    const size_t start = pos_;
    while (!at_end() && peek() != '|') {
      RawItem item;
      VOXTRAL_RETURN_IF_ERROR(parse_item(item));
      items.push_back(std::move(item));
    }
    if (items.empty()) return error_at(start, "empty alternative");
    if (items.size() > 8) return unsupported(start, "more than 8 items in one alternative");
    bool consumes = false;
    for (const RawItem& item : items) consumes |= item.type == Pretokenizer::Item::kRepeat && item.min > 0;
    if (!consumes) return unsupported(start, "an alternative that can match the empty string");
    alternatives_.push_back(std::move(items));
    alternative_starts_.push_back(start);
    return Status::Ok();
  }

  Status parse_item(RawItem& item) {
    const size_t start = pos_;
    const uint32_t c = peek();
    if (c == '(') {
      if (peek(1) == '?' && (peek(2) == '=' || peek(2) == '!')) {
        item.type = peek(2) == '=' ? Pretokenizer::Item::kLookahead : Pretokenizer::Item::kNegativeLookahead;
        pos_ += 3;
        VOXTRAL_RETURN_IF_ERROR(parse_atom(item.cls));
        if (peek() != ')') return unsupported(pos_, "a lookahead holding more than one character class");
        ++pos_;
        if (!at_end() && (peek() == '?' || peek() == '*' || peek() == '+' || peek() == '{'))
          return unsupported(pos_, "a quantified lookahead");
        return Status::Ok();
      }
      if (peek(1) == '?') return unsupported(start, "groups and flags such as (?i) or (?:...)");
      return unsupported(start, "groups");
    }
    VOXTRAL_RETURN_IF_ERROR(parse_atom(item.cls));
    return parse_quantifier(item);
  }

  Status parse_quantifier(RawItem& item) {
    const size_t start = pos_;
    switch (peek()) {
      case '?': item.min = 0, item.max = 1, ++pos_; break;
      case '*': item.min = 0, item.max = UINT32_MAX, ++pos_; break;
      case '+': item.min = 1, item.max = UINT32_MAX, ++pos_; break;
      case '{': {
        ++pos_;
        uint64_t m = 0, n = 0;
        if (!read_number(&m)) return error_at(start, "malformed {m,n} repetition");
        n = m;
        if (peek() == ',') {
          ++pos_;
          if (peek() == '}') n = UINT32_MAX;
          else if (!read_number(&n)) return error_at(start, "malformed {m,n} repetition");
        }
        if (peek() != '}') return error_at(start, "malformed {m,n} repetition");
        ++pos_;
        if (n < m || n == 0) return error_at(start, "empty {m,n} repetition");
        item.min = static_cast<uint32_t>(m);
        item.max = static_cast<uint32_t>(n);
        break;
      }
      default: return Status::Ok();
    }
    if (peek() == '?') return unsupported(pos_, "lazy quantifiers");
    if (peek() == '+') return unsupported(pos_, "possessive quantifiers");
    if (peek() == '*' || peek() == '{') return error_at(pos_, "repetition of a repetition");
    return Status::Ok();
  }

  bool read_number(uint64_t* out) {
    const size_t start = pos_;
    uint64_t v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9' && v < 100000) v = v * 10 + (cps_[pos_++] - '0');
    *out = v;
    return pos_ > start && v < 100000;
  }

  Status parse_atom(Class& cls) {
    const size_t start = pos_;
    if (at_end()) return error_at(start, "missing character class");
    const uint32_t c = cps_[pos_];
    switch (c) {
      case '[': return parse_class(cls);
      case '\\': return parse_escape(cls, /*in_class=*/false);
      case '.':
        ++pos_;
        cls.negated = true;
        cls.literals.push_back('\n');
        return Status::Ok();
      case '^':
      case '$': return unsupported(start, "anchors");
      case '*':
      case '+':
      case '?':
      case '{': return error_at(start, "repetition operator without an expression");
      case ')': return error_at(start, "unbalanced ')'");
      case '(': return unsupported(start, "groups");
      case '|': return error_at(start, "empty alternative");
      default:
        ++pos_;
        cls.literals.push_back(c);
        return Status::Ok();
    }
  }

  Status parse_class(Class& cls) {
    const size_t open = pos_++;
    if (peek() == '^') {
      cls.negated = true;
      ++pos_;
    }
    bool first = true;
    while (true) {
      if (at_end()) return error_at(open, "unclosed character class");
      const size_t at = pos_;
      const uint32_t c = cps_[pos_];
      if (c == ']' && !first) {
        ++pos_;
        return Status::Ok();
      }
      first = false;
      if (c == '[') return unsupported(at, "nested classes and [:posix:] classes");
      if ((c == '&' && peek(1) == '&') || (c == '~' && peek(1) == '~') || (c == '-' && peek(1) == '-'))
        return unsupported(at, "class set operations");
      if (c == '\\') {
        VOXTRAL_RETURN_IF_ERROR(parse_escape(cls, /*in_class=*/true));
      } else {
        cls.literals.push_back(c);
        ++pos_;
      }
      if (peek() == '-' && peek(1) != ']' && peek(1) != 0xFFFFFFFF) return unsupported(pos_, "character ranges");
    }
  }

  // At the backslash. Adds what the escape matches to `cls`.
  Status parse_escape(Class& cls, bool in_class) {
    const size_t start = pos_++;
    if (at_end()) return error_at(start, "trailing backslash");
    const uint32_t e = cps_[pos_++];
    // A class on its own (outside [...]) may be negated as a whole.
    auto add = [&](uint32_t mask, bool negate) {
      if (negate && !in_class) {
        cls.negated = !cls.negated;
        cls.categories |= mask;
      } else {
        cls.categories |= negate ? (~mask & kAllCategories) : mask;
      }
    };
    switch (e) {
      case 'p':
      case 'P': {
        std::string name;
        if (peek() == '{') {
          ++pos_;
          while (!at_end() && peek() != '}' && name.size() < 32) append_utf8(name, cps_[pos_++]);
          if (peek() != '}') return error_at(start, "unclosed \\p{...}");
          ++pos_;
        } else if (!at_end()) {
          append_utf8(name, cps_[pos_++]);
        }
        for (const PropertyName& p : kProperties) {
          if (name == p.name) {
            add(p.mask, e == 'P');
            return Status::Ok();
          }
        }
        return unsupported(start, "the property '" + name + "' (General_Category short names only: L, Lu, N, M, ...)");
      }
      case 's': add(kWhiteSpace, false); return Status::Ok();
      case 'S': add(kWhiteSpace, true); return Status::Ok();
      case 'd': add(bit(kNd), false); return Status::Ok();
      case 'D': add(bit(kNd), true); return Status::Ok();
      case 'r': cls.literals.push_back('\r'); return Status::Ok();
      case 'n': cls.literals.push_back('\n'); return Status::Ok();
      case 't': cls.literals.push_back('\t'); return Status::Ok();
      case 'f': cls.literals.push_back('\f'); return Status::Ok();
      case 'v': cls.literals.push_back('\v'); return Status::Ok();
      case 'a': cls.literals.push_back(0x07); return Status::Ok();
      case 'x': {
        uint32_t v = 0;
        int digits = 0;
        const bool braced = peek() == '{';
        if (braced) ++pos_;
        while (!at_end() && digits < (braced ? 8 : 2)) {
          const uint32_t h = peek();
          uint32_t d;
          if (h >= '0' && h <= '9') d = h - '0';
          else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
          else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
          else break;
          v = v * 16 + d;
          ++digits;
          ++pos_;
        }
        if (braced) {
          if (peek() != '}') return error_at(start, "malformed \\x{...}");
          ++pos_;
        }
        if (digits == 0 || (!braced && digits != 2) || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
          return error_at(start, "malformed \\x escape");
        cls.literals.push_back(v);
        return Status::Ok();
      }
      default:
        if (e < 0x80 && e > 0x20 && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))) {
          cls.literals.push_back(e);  // escaped punctuation: \/ \. \- \[ ...
          return Status::Ok();
        }
        std::string name;
        append_utf8(name, e);
        return unsupported(start, "the escape \\" + name);
    }
  }

  Result<Pretokenizer> build() {
    // Kinds: the categories, then every code point the pattern names.
    std::vector<uint32_t> literals;
    for (const auto& alternative : alternatives_)
      for (const RawItem& item : alternative)
        for (uint32_t cp : item.cls.literals)
          if (std::find(literals.begin(), literals.end(), cp) == literals.end()) literals.push_back(cp);
    if (kNumCategories + literals.size() > Pretokenizer::kMaxKinds)
      return unsupported(0, "more than " + std::to_string(Pretokenizer::kMaxKinds - kNumCategories) +
                                " distinct literal characters");
    if (alternatives_.size() > 64) return unsupported(0, "more than 64 alternatives");
    const unsigned num_kinds = kNumCategories + static_cast<unsigned>(literals.size());
    const uint64_t all_kinds = num_kinds == 64 ? ~uint64_t{0} : (uint64_t{1} << num_kinds) - 1;

    Pretokenizer out;
    out.categories_ = category_table();
    auto literal_category = [&](uint32_t cp) { return out.categories_(cp); };

    auto mask_of = [&](const Class& cls) {
      uint64_t mask = cls.categories;  // a code point the pattern does not name has its category as kind
      for (size_t k = 0; k < literals.size(); ++k) {
        const uint32_t cp = literals[k];
        const bool hit = ((cls.categories >> literal_category(cp)) & 1) ||
                         std::find(cls.literals.begin(), cls.literals.end(), cp) != cls.literals.end();
        if (hit) mask |= uint64_t{1} << (kNumCategories + k);
      }
      return cls.negated ? (~mask & all_kinds) : mask;
    };

    for (size_t a = 0; a < alternatives_.size(); ++a) {
      Pretokenizer::Alternative items;
      uint64_t first = 0;
      bool first_done = false;
      for (const RawItem& raw : alternatives_[a]) {
        const Pretokenizer::Item item{mask_of(raw.cls), raw.min, raw.max, raw.type};
        if (!first_done) {
          if (item.type != Pretokenizer::Item::kRepeat) {
            first = all_kinds;  // a leading lookahead: try this alternative everywhere
            first_done = true;
          } else {
            first |= item.mask;
            first_done = item.min > 0;
          }
        }
        items.push_back(item);
      }
      for (unsigned k = 0; k < num_kinds; ++k)
        if ((first >> k) & 1) out.first_[k] |= uint64_t{1} << a;
      out.alternatives_.push_back(std::move(items));
    }

    for (uint32_t b = 0; b < 128; ++b) out.ascii_kind_[b] = static_cast<uint8_t>(out.categories_(b));
    for (size_t k = 0; k < literals.size(); ++k) {
      const auto kind = static_cast<uint8_t>(kNumCategories + k);
      if (literals[k] < 128) {
        out.ascii_kind_[literals[k]] = kind;
      } else {
        out.non_ascii_literals_.push_back(literals[k]);
        out.non_ascii_literal_kinds_.push_back(kind);
      }
    }
    return out;
  }

  std::vector<uint32_t> cps_;
  bool valid_utf8_ = true;
  size_t pos_ = 0;
  std::vector<std::vector<RawItem>> alternatives_;
  std::vector<size_t> alternative_starts_;
};

Result<Pretokenizer> Pretokenizer::compile(std::string_view pattern) { return PatternCompiler(pattern).compile(); }

}  // namespace voxtral::text
