// A minimal test harness for libvoxtral's unit tests (ctest runs one executable per
// file). CHECK records a failure and continues; the exit code is the failure count.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace voxtral_test {
inline int& failures() {
  static int n = 0;
  return n;
}
inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what.c_str());
  ++failures();
}
}  // namespace voxtral_test

#define CHECK(cond) \
  do {              \
    if (!(cond)) ::voxtral_test::fail(__FILE__, __LINE__, #cond); \
  } while (0)
#define CHECK_EQ(a, b) \
  do {                 \
    if (!((a) == (b))) ::voxtral_test::fail(__FILE__, __LINE__, #a " == " #b); \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                            \
  do {                                                                                   \
    double va_ = (a), vb_ = (b);                                                         \
    if (!(std::fabs(va_ - vb_) <= (tol)))                                                \
      ::voxtral_test::fail(__FILE__, __LINE__,                                           \
                           #a " ~= " #b " (" + std::to_string(va_) + " vs " + std::to_string(vb_) + ")"); \
  } while (0)

#define TEST_MAIN_RETURN()                                                 \
  do {                                                                     \
    if (::voxtral_test::failures()) std::fprintf(stderr, "%d check(s) failed\n", ::voxtral_test::failures()); \
    return ::voxtral_test::failures() ? 1 : 0;                              \
  } while (0)
