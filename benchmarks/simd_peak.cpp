// Peak rates of the x86 AVX2 instructions quantized GEMMs are built from, on one core: what
// bounds an int4 / int8 kernel on a CPU without VNNI (benchmarks/results/linear_dq4_experiment.md).
//
//     g++ -O2 -o /tmp/simd_peak benchmarks/simd_peak.cpp && /tmp/simd_peak 400000000
//     (/tmp/simd_peak 400000000 & /tmp/simd_peak 400000000 & wait)   # both cores at once
//
// Each loop runs 8 independent accumulator chains per iteration. Every multiply has its own
// pair of inputs, made opaque to the compiler each iteration (an empty asm), so none is
// hoisted or merged; the adds into the accumulators are 1-cycle chains, never the limit.
//   maddubs: vpmaddubsw (32 u8 x s8 products, pairs added into 16-bit lanes) + vpaddw:
//            the int4 / int8 path without VNNI, 32 multiply-adds
//   maddwd:  vpmaddwd (16 s16 x s16 products, pairs added into 32-bit lanes) + vpaddd:
//            XNNPACK's int8 path on AVX2 (bytes widened to 16 bits first), 16 multiply-adds
//   fma:     vfmadd231ps, 8 lanes: 16 flop
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#define OPAQUE4(a, b, c, d) __asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))

// 8 chains of acc += Mul(a_i, b_j): four a and two b inputs, so each multiply has its own pair.
// `Mul` / `Add` are the instruction pair under test; `value` makes the input vectors.
template <__m256i (*Mul)(__m256i, __m256i), __m256i (*Add)(__m256i, __m256i), __m256i (*value)(int)>
__attribute__((target("avx2"))) double integer_rate(long iters, int* sink) {
  __m256i a0 = value(3), a1 = value(5), a2 = value(7), a3 = value(9);
  __m256i b0 = value(-2), b1 = value(4);
  __m256i acc[8];
  for (auto& v : acc) v = _mm256_setzero_si256();
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i) {
    OPAQUE4(a0, a1, a2, a3);
    __asm__ volatile("" : "+x"(b0), "+x"(b1));
    acc[0] = Add(acc[0], Mul(a0, b0));
    acc[1] = Add(acc[1], Mul(a1, b0));
    acc[2] = Add(acc[2], Mul(a2, b0));
    acc[3] = Add(acc[3], Mul(a3, b0));
    acc[4] = Add(acc[4], Mul(a0, b1));
    acc[5] = Add(acc[5], Mul(a1, b1));
    acc[6] = Add(acc[6], Mul(a2, b1));
    acc[7] = Add(acc[7], Mul(a3, b1));
  }
  const double t = seconds_since(t0);
  __m256i s = acc[0];
  for (int j = 1; j < 8; ++j) s = Add(s, acc[j]);
  *sink += _mm256_extract_epi32(s, 0);
  return 8.0 * iters / t;
}

// The instructions as plain functions (template arguments must be addressable).
__attribute__((target("avx2"), always_inline)) inline __m256i maddubs(__m256i a, __m256i b) { return _mm256_maddubs_epi16(a, b); }
__attribute__((target("avx2"), always_inline)) inline __m256i maddwd(__m256i a, __m256i b) { return _mm256_madd_epi16(a, b); }
__attribute__((target("avx2"), always_inline)) inline __m256i add16(__m256i a, __m256i b) { return _mm256_add_epi16(a, b); }
__attribute__((target("avx2"), always_inline)) inline __m256i add32(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
__attribute__((target("avx2"), always_inline)) inline __m256i bytes(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
__attribute__((target("avx2"), always_inline)) inline __m256i shorts(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }

__attribute__((target("avx2,fma"))) double fma_rate(long iters, int* sink) {
  __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
  __m256 acc[8];
  for (auto& v : acc) v = _mm256_set1_ps(1.f);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+x"(x), "+x"(y));
#pragma GCC unroll 8
    for (auto& v : acc) v = _mm256_fmadd_ps(v, x, y);  // 8 chains of latency 4: 2 per cycle fit
  }
  const double t = seconds_since(t0);
  __m256 s = acc[0];
  for (int j = 1; j < 8; ++j) s = _mm256_add_ps(s, acc[j]);
  *sink += static_cast<int>(_mm256_cvtss_f32(s));
  return 8.0 * iters / t;
}

}  // namespace

int main(int argc, char** argv) {
  const long iters = argc > 1 ? std::atol(argv[1]) : 400000000L;
  int sink = 0;
  const double ub = integer_rate<maddubs, add16, bytes>(iters, &sink);
  const double wd = integer_rate<maddwd, add32, shorts>(iters, &sink);
  const double f = fma_rate(iters, &sink);
  std::printf("vpmaddubsw+vpaddw  %.2f G/s  = %6.1f G int8 multiply-adds/s\n", ub / 1e9, 32 * ub / 1e9);
  std::printf("vpmaddwd+vpaddd    %.2f G/s  = %6.1f G int16 multiply-adds/s\n", wd / 1e9, 16 * wd / 1e9);
  std::printf("vfmadd231ps        %.2f G/s  = %6.1f GFLOP/s float32\n", f / 1e9, 16 * f / 1e9);
  return sink == 12345 ? 1 : 0;  // keeps the results live
}
