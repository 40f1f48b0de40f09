// Float vector loops shared by the voxtral:: kernels, built for x86-64-v4 (AVX-512),
// x86-64-v3 (AVX2 + FMA) and the baseline (the loader picks one at run time), so a portable
// wheel still runs 8- or 16-wide with fused multiply-adds where the CPU can. (Not
// "avx2,fma": target_clones reads that as two clones, one with AVX2 and no FMA.)
#pragma once

#include <cstdint>

namespace voxtral::ops {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VOXTRAL_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VOXTRAL_MULTIVERSION
#endif

// Dot product with 8 independent accumulators: a single float accumulator is a serial
// dependency chain the compiler may not reorder (no -ffast-math), so it would not vectorize.
VOXTRAL_MULTIVERSION static float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[d + j] * b[d + j];
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; d < n; ++d) sum += a[d] * b[d];
  return sum;
}

}  // namespace voxtral::ops
