// The arithmetic of voxtral::linear_dq4 (linear_dq4.cpp): int8 activations quantized per row
// and group at run time, times int4 weights, summed exactly in integers within a group.
// Kept free of ExecuTorch so the kernel can be timed and tested on its own.
//
// Why: on x86 CPUs with AVX2 and no VNNI (Zen 2/3, Intel before Ice Lake), XNNPACK's
// 8da4w GEMMs reach 100-126 GFLOP/s on two cores and its int8 ones ~190
// (benchmarks/results/linear_kernels.md). vpmaddubsw multiplies 32 unsigned by 32 signed
// bytes and adds pairs into 16-bit lanes. With 4-bit weights stored as q + 8 in [0, 15]
// and activations in [-127, 127], a pair is at most 2 * 15 * 127 = 3810, so up to 8
// products (a group of 256) add up in 16 bits (<= 30480) before one vpmaddwd widens them:
// about one multiply instruction per 32 multiply-adds, where int8 x int8 needs two.
//
// Layouts (the PyTorch reference, with the exact semantics, is
// voxtral_native/export/ops.py `linear_dq4_reference`):
//   weights  [N, K/2] uint8. Chunk c of a row (64 weights) is 32 bytes: byte j holds weight
//            64c + j in its low nibble and 64c + 32 + j in its high nibble, each as q + 8
//            (q in [-8, 7]), so one 32-byte load and two masks give two 32-lane vectors.
//   w_scales [N, K / G] float32: w[n, k] = q[n, k] * w_scales[n, k / G]
//   x        [M, K] float32 -> xq [M, K] int8, x_scales [M, K / G] float32 (max |x| / 127
//            per row and group; 0 for an all-zero group), x_sums [M, K / G] int32 (sum of xq)
//   out[m, n] = sum_g w_scales[n, g] * x_scales[m, g] * sum_{k in g} q[n, k] * xq[m, k] + bias[n]
// G is a multiple of 64 and at most 256.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VOXTRAL_DQ4_AVX2 1
#endif

namespace voxtral::ops::dq4 {

// The tile loops below run over compile-time NT / MT: unrolled, their arrays live in registers.
#define VOXTRAL_UNROLL _Pragma("GCC unroll 8")

constexpr int64_t kChunk = 64;      // weights per 32-byte chunk
constexpr int64_t kMaxGroup = 256;  // 16-bit sums stay exact up to 8 chunk-halves

inline bool group_size_ok(int64_t group_size) {
  return group_size > 0 && group_size % kChunk == 0 && group_size <= kMaxGroup;
}

// Rows [m_begin, m_end) of x [M, K] -> xq, x_scales, x_sums (see above).
inline void quantize_rows(const float* x, int64_t m_begin, int64_t m_end, int64_t K, int64_t G, int8_t* xq,
                          float* x_scales, int32_t* x_sums) {
  const int64_t groups = K / G;
  for (int64_t m = m_begin; m < m_end; ++m) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* xs = x + m * K + g * G;
      float amax = 0.f;
      for (int64_t k = 0; k < G; ++k) amax = std::max(amax, std::fabs(xs[k]));
      const float scale = amax / 127.f;
      int32_t sum = 0;
      int8_t* q = xq + m * K + g * G;
      for (int64_t k = 0; k < G; ++k) {
        // round half to even, as torch.round; x / scale as the reference divides
        const float r = scale > 0.f ? std::nearbyint(xs[k] / scale) : 0.f;
        q[k] = static_cast<int8_t>(std::clamp(r, -127.f, 127.f));
        sum += q[k];
      }
      x_scales[m * groups + g] = scale;
      x_sums[m * groups + g] = sum;
    }
  }
}

// Portable path: one output at a time, the weights unpacked per chunk.
inline void gemm_portable(const int8_t* xq, const float* x_scales, const int32_t* x_sums, int64_t M, int64_t K,
                          int64_t G, const uint8_t* w, const float* w_scales, const float* bias, int64_t N,
                          int64_t n_begin, int64_t n_end, float* out) {
  const int64_t groups = K / G;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const uint8_t* wn = w + n * (K / 2);
    for (int64_t m = 0; m < M; ++m) {
      const int8_t* xm = xq + m * K;
      float acc = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        int32_t d = 0;  // sum of (q + 8) * xq over the group
        for (int64_t c = g * G / kChunk; c < (g + 1) * G / kChunk; ++c) {
          for (int64_t j = 0; j < 32; ++j) {
            const uint8_t b = wn[c * 32 + j];
            d += static_cast<int32_t>(b & 0x0F) * xm[c * kChunk + j] + static_cast<int32_t>(b >> 4) * xm[c * kChunk + 32 + j];
          }
        }
        d -= 8 * x_sums[m * groups + g];
        acc += w_scales[n * groups + g] * x_scales[m * groups + g] * static_cast<float>(d);
      }
      out[m * N + n] = acc + (bias != nullptr ? bias[n] : 0.f);
    }
  }
}

#ifdef VOXTRAL_DQ4_AVX2
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// NT output channels x MT rows, all of K. 16-bit sums per (channel, row) within a group;
// at each group's end they widen to 32 bits (vpmaddwd with ones: 8 lanes), lose the +8
// offset (8 * x_sum spread as x_sum per lane), and add into float lanes with the group's two
// scales. Registers: NT * MT 16-bit sums + NT * MT float sums + NT weight vectors.
template <int NT, int MT>
__attribute__((target("avx2,fma"), always_inline)) inline void tile_avx2(
    const int8_t* xq, const float* x_scales, const int32_t* x_sums, int64_t K, int64_t G, const uint8_t* w,
    const float* w_scales, const float* bias, int64_t N, int64_t n0, int64_t m0, float* out) {
  const int64_t groups = K / G;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 facc[NT][MT];
  VOXTRAL_UNROLL
  for (int t = 0; t < NT; ++t)
    VOXTRAL_UNROLL
    for (int r = 0; r < MT; ++r) facc[t][r] = _mm256_setzero_ps();
  const uint8_t* wrow[NT];
  VOXTRAL_UNROLL
  for (int t = 0; t < NT; ++t) wrow[t] = w + (n0 + t) * (K / 2);
  const int8_t* xrow[MT];
  VOXTRAL_UNROLL
  for (int r = 0; r < MT; ++r) xrow[r] = xq + (m0 + r) * K;

  for (int64_t g = 0; g < groups; ++g) {
    __m256i acc[NT][MT];
    VOXTRAL_UNROLL
    for (int t = 0; t < NT; ++t)
      VOXTRAL_UNROLL
      for (int r = 0; r < MT; ++r) acc[t][r] = _mm256_setzero_si256();
    for (int64_t c = g * G / kChunk; c < (g + 1) * G / kChunk; ++c) {
      __m256i wb[NT];
      VOXTRAL_UNROLL
      for (int t = 0; t < NT; ++t) wb[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[t] + c * 32));
      {  // weights 64c .. 64c + 31: low nibbles
        __m256i wl[NT];
        VOXTRAL_UNROLL
        for (int t = 0; t < NT; ++t) wl[t] = _mm256_and_si256(wb[t], low4);
        VOXTRAL_UNROLL
        for (int r = 0; r < MT; ++r) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[r] + c * kChunk));
          VOXTRAL_UNROLL
          for (int t = 0; t < NT; ++t) acc[t][r] = _mm256_add_epi16(acc[t][r], _mm256_maddubs_epi16(wl[t], xv));
        }
      }
      {  // weights 64c + 32 .. 64c + 63: high nibbles
        __m256i wh[NT];
        VOXTRAL_UNROLL
        for (int t = 0; t < NT; ++t) wh[t] = _mm256_and_si256(_mm256_srli_epi16(wb[t], 4), low4);
        VOXTRAL_UNROLL
        for (int r = 0; r < MT; ++r) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[r] + c * kChunk + 32));
          VOXTRAL_UNROLL
          for (int t = 0; t < NT; ++t) acc[t][r] = _mm256_add_epi16(acc[t][r], _mm256_maddubs_epi16(wh[t], xv));
        }
      }
    }
    VOXTRAL_UNROLL
    for (int r = 0; r < MT; ++r) {
      const __m256i xsum = _mm256_set1_epi32(x_sums[(m0 + r) * groups + g]);
      const float xs = x_scales[(m0 + r) * groups + g];
      VOXTRAL_UNROLL
      for (int t = 0; t < NT; ++t) {
        const __m256i d = _mm256_sub_epi32(_mm256_madd_epi16(acc[t][r], ones), xsum);
        const __m256 scale = _mm256_set1_ps(w_scales[(n0 + t) * groups + g] * xs);
        facc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), scale, facc[t][r]);
      }
    }
  }
  VOXTRAL_UNROLL
  for (int t = 0; t < NT; ++t) {
    const float b = bias != nullptr ? bias[n0 + t] : 0.f;
    VOXTRAL_UNROLL
    for (int r = 0; r < MT; ++r) out[(m0 + r) * N + n0 + t] = hsum8(facc[t][r]) + b;
  }
}

template <int NT>
__attribute__((target("avx2,fma"))) inline void rows_avx2(const int8_t* xq, const float* x_scales,
                                                          const int32_t* x_sums, int64_t M, int64_t K, int64_t G,
                                                          const uint8_t* w, const float* w_scales, const float* bias,
                                                          int64_t N, int64_t n0, float* out) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile_avx2<NT, 4>(xq, x_scales, x_sums, K, G, w, w_scales, bias, N, n0, m, out);
  switch (M - m) {
    case 3: tile_avx2<NT, 3>(xq, x_scales, x_sums, K, G, w, w_scales, bias, N, n0, m, out); break;
    case 2: tile_avx2<NT, 2>(xq, x_scales, x_sums, K, G, w, w_scales, bias, N, n0, m, out); break;
    case 1: tile_avx2<NT, 1>(xq, x_scales, x_sums, K, G, w, w_scales, bias, N, n0, m, out); break;
    default: break;
  }
}

// Output channels [n_begin, n_end) for all M rows. One row (a decode step) takes 4
// channels a tile: it streams the weights once, and 4 independent chains hide latency.
// More rows take 2 channels x 4 rows: each weight load feeds 8 multiplies.
__attribute__((target("avx2,fma"))) inline void gemm_avx2(const int8_t* xq, const float* x_scales,
                                                          const int32_t* x_sums, int64_t M, int64_t K, int64_t G,
                                                          const uint8_t* w, const float* w_scales, const float* bias,
                                                          int64_t N, int64_t n_begin, int64_t n_end, float* out) {
  int64_t n = n_begin;
  if (M == 1) {
    for (; n + 4 <= n_end; n += 4) tile_avx2<4, 1>(xq, x_scales, x_sums, K, G, w, w_scales, bias, N, n, 0, out);
  } else {
    for (; n + 2 <= n_end; n += 2) rows_avx2<2>(xq, x_scales, x_sums, M, K, G, w, w_scales, bias, N, n, out);
  }
  for (; n < n_end; ++n) rows_avx2<1>(xq, x_scales, x_sums, M, K, G, w, w_scales, bias, N, n, out);
}
#endif

}  // namespace voxtral::ops::dq4
