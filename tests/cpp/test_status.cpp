#include <memory>
#include <string>
#include <variant>

#include "check.h"
#include "voxtral/status.h"

using voxtral::ErrorCode;
using voxtral::Result;
using voxtral::Status;

namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Status(ErrorCode::kInvalidArgument, "x must be positive, got " + std::to_string(x));
  return x;
}

Result<int> doubled(int x) {
  VOXTRAL_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

Status check_both(int a, int b) {
  VOXTRAL_RETURN_IF_ERROR(parse_positive(a).status());
  VOXTRAL_RETURN_IF_ERROR(parse_positive(b).status());
  return Status::Ok();
}

}  // namespace

int main() {
  CHECK(Status().ok());
  CHECK_EQ(Status().to_string(), std::string("Ok"));
  Status s(ErrorCode::kNotFound, "file 'x' is missing");
  CHECK(!s.ok());
  CHECK(s.code() == ErrorCode::kNotFound);
  CHECK_EQ(s.to_string(), std::string("NotFound: file 'x' is missing"));

  // Every code has a distinct name (the Python side maps names to exception classes).
  for (int a = 0; a <= static_cast<int>(ErrorCode::kInternal); ++a)
    for (int b = a + 1; b <= static_cast<int>(ErrorCode::kInternal); ++b)
      CHECK(std::string(voxtral::error_code_name(static_cast<ErrorCode>(a))) !=
            voxtral::error_code_name(static_cast<ErrorCode>(b)));

  CHECK(doubled(4).ok());
  CHECK_EQ(*doubled(4), 8);
  Result<int> bad = doubled(-1);
  CHECK(!bad.ok());
  CHECK(bad.status().code() == ErrorCode::kInvalidArgument);
  CHECK(bad.status().message().find("-1") != std::string::npos);
  CHECK(check_both(1, 2).ok());
  CHECK(check_both(1, 0).code() == ErrorCode::kInvalidArgument);

  // Misuse throws instead of aborting.
  bool threw = false;
  try {
    (void)bad.value();
  } catch (const std::bad_variant_access&) {
    threw = true;
  }
  CHECK(threw);

  // A Result built from an OK status (a bug in the caller) still reports an error.
  Result<int> odd{Status::Ok()};
  CHECK(!odd.ok());
  CHECK(odd.status().code() == ErrorCode::kInternal);

  // Move-only values.
  Result<std::unique_ptr<int>> p = std::make_unique<int>(7);
  CHECK(p.ok());
  std::unique_ptr<int> owned = std::move(p).value();
  CHECK_EQ(*owned, 7);
  TEST_MAIN_RETURN();
}
