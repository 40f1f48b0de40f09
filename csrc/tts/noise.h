// The session's random generator: the noise of the flow matching (36 standard normal values
// per emitted frame) and, with a temperature, the semantic code's draw. Exactly the facts
// sheet's generator, so a seed gives the same audio in every run, thread and process:
//
//   xorshift64 (x ^= x << 13; x ^= x >> 7; x ^= x << 17), state = seed, or
//   0x12345678ABCDEF01 for seed 0;
//   uniform = (float)(x >> 11) * 2^-53 (the top 53 bits; may round up to 1.0f);
//   normal = sqrtf(-2 logf(u1)) * cosf(2 pi u2): Box-Muller, cos branch only, u1 drawn
//   before u2 and redrawn while u1 < 1e-30f.
//
// Float math on purpose: logf / cosf / sqrtf of the C library, not double.
#pragma once

#include <cmath>
#include <cstdint>

namespace voxtral::tts {

class NoiseGenerator {
 public:
  static constexpr uint64_t kZeroSeedState = 0x12345678ABCDEF01ull;

  explicit NoiseGenerator(uint64_t seed) : state_(seed == 0 ? kZeroSeedState : seed) {}

  uint64_t next_u64() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

  float uniform() { return static_cast<float>(next_u64() >> 11) * (1.0f / 9007199254740992.0f); }

  float normal() {
    float u1 = uniform();
    while (u1 < 1e-30f) u1 = uniform();
    const float u2 = uniform();
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853071795864f * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace voxtral::tts
