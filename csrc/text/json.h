// A small, strict JSON reader (RFC 8259) for tekken.json and other metadata files.
//
//   VOXTRAL_ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::parse(std::move(bytes), path));
//   const JsonValue* vocab = doc.root().find("vocab");      // nullptr when absent
//   for (size_t i = 0; vocab && i < vocab->size(); ++i) { const JsonValue& entry = vocab->at(i); ... }
//
// Strict: no comments, trailing commas, NaN/Infinity, single quotes, control characters
// in strings or invalid UTF-8; anything after the top-level value is an error. Strings
// are decoded (escapes, surrogate pairs; a lone surrogate escape becomes U+FFFD). Numbers
// keep their text so integers read back exactly. Duplicate keys are kept; find() returns
// the last one, as Python's json module does. Nesting deeper than kMaxDepth is refused
// instead of overflowing the stack.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "voxtral/status.h"

namespace voxtral::text {

class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  // "null", "a boolean", "a number", "a string", "an array", "an object" (for messages).
  const char* type_name() const;
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool boolean() const { return bool_; }                // kBool
  std::string_view string() const { return text_; }     // kString: decoded UTF-8
  std::string_view number_text() const { return text_; }  // kNumber: as written
  // kNumber written as an integer (no fraction or exponent) that fits in int64_t.
  bool to_int64(int64_t* out) const;
  double to_double() const;  // kNumber

  size_t size() const { return items_.size(); }  // array items or object members
  const JsonValue& at(size_t i) const { return items_[i]; }
  std::string_view key(size_t i) const { return keys_[i]; }  // objects
  const JsonValue* find(std::string_view key) const;          // objects: last match or nullptr

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string_view text_;
  std::vector<JsonValue> items_;
  std::vector<std::string_view> keys_;
};

class JsonDocument {
 public:
  static constexpr int kMaxDepth = 256;

  // Parses `text`, which the document keeps (values point into it). Errors are
  // InvalidProgram: "<source>: invalid JSON at line L, column C: <what>".
  static Result<JsonDocument> parse(std::string text, const std::string& source);

  const JsonValue& root() const { return storage_->root; }

 private:
  struct Storage {
    std::string text;
    std::deque<std::string> unescaped;  // strings with escapes, decoded (stable addresses)
    JsonValue root;
  };
  std::unique_ptr<Storage> storage_;
};

}  // namespace voxtral::text
