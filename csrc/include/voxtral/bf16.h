// bfloat16 <-> float32, as the runners stage the inputs of programs with bf16 edges
// (`lm_input_is_bf16`). A bf16 value is the top 16 bits of a float32.
//
//   uint16_t b = voxtral::float_to_bf16(x);  // round to nearest, ties to even
//   float y = voxtral::bf16_to_float(b);     // exact
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace voxtral {

// Round to nearest even: (bits + 0x7FFF + lsb) >> 16, as torch's float -> bfloat16. Finite
// values past the largest bf16 become inf, subnormals round like any other value (no flush
// to zero), inf stays inf, and every NaN becomes the quiet NaN 0x7FC0 (torch's, sign dropped).
inline uint16_t float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

inline void float_to_bf16(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = float_to_bf16(in[i]);
}

inline void bf16_to_float(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(in[i]);
}

}  // namespace voxtral
