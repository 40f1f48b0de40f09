// Errors as values. libvoxtral never aborts the process and never throws across its
// API: every fallible call returns a Status or a Result<T>. The Python bindings turn
// them into exceptions in one place (python/status_bindings.cpp).
//
//   voxtral::Result<std::unique_ptr<voxtral::Program>> p = voxtral::Program::load(path);
//   if (!p.ok()) { std::cerr << p.status().to_string() << "\n"; return 1; }
//   voxtral::Program& program = **p;
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "voxtral/export.h"

namespace voxtral {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,     // the caller passed something unusable (bad shape, NaN, bad option)
  kNotFound,            // a file, method, key or token that should exist does not
  kIoError,             // reading or writing a file failed
  kInvalidProgram,      // a program/tokenizer/model file is corrupt or not what we expect
  kUnsupportedVersion,  // a file of a format version this build does not know
  kFailedPrecondition,  // the call is not valid in the object's current state
  kOutOfRange,          // an index or id outside its valid range
  kInternal,            // a runtime/backend failure that is not the caller's fault
};

// Stable name of a code ("InvalidArgument", ...), used to pick the Python exception.
VOXTRAL_API const char* error_code_name(ErrorCode code);

class VOXTRAL_API Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: program file '/x/model.pte' does not exist"
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or the Status saying why there is none. Reading value() of a failed Result
// is a programming error and throws std::bad_variant_access (it does not abort).
template <typename T>
class Result {
 public:
  Result(T value) : data_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    if (std::get<0>(data_).ok()) {
      data_.template emplace<0>(ErrorCode::kInternal, "Result built from an OK status without a value");
    }
  }

  bool ok() const { return data_.index() == 1; }
  // The error, or OK when a value is present.
  Status status() const { return ok() ? Status() : std::get<0>(data_); }

  T& value() & { return std::get<1>(data_); }
  const T& value() const& { return std::get<1>(data_); }
  T&& value() && { return std::get<1>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> data_;
};

}  // namespace voxtral

#define VOXTRAL_CONCAT_INNER_(a, b) a##b
#define VOXTRAL_CONCAT_(a, b) VOXTRAL_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is an error.
#define VOXTRAL_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::voxtral::Status voxtral_status_ = (expr);        \
    if (!voxtral_status_.ok()) return voxtral_status_; \
  } while (0)

// `lhs = value of expr`, or return its error from the enclosing function.
#define VOXTRAL_ASSIGN_OR_RETURN(lhs, expr) \
  VOXTRAL_ASSIGN_OR_RETURN_IMPL_(VOXTRAL_CONCAT_(voxtral_result_, __LINE__), lhs, expr)
#define VOXTRAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
