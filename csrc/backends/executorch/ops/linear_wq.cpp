// voxtral::linear_wq.out: a linear layer with weight-only int8 or int4 weights.
//
// Why a custom op: ExecuTorch 1.5.1's XNNPACK lowering of torchao's weight-only linears
// ignores the weight scales (outputs ~1000x off; tests/python/test_stt_export.py keeps a
// canary), and without the delegate the wheel has no kernel for the dequantize op. This
// kernel reads the quantized weights directly: a decoder step is a matrix-vector product,
// bound by how fast the weights stream from memory, so int8 / int4 weights (1/4, 1/8 of
// fp32) are what make it fast; activations stay float32.
//
// Shapes (the PyTorch reference, with the exact semantics, is
// voxtral_native/export/ops.py `linear_wq`):
//   x        [..., K]  float32
//   qweight  bits 8: [N, K] int8;  bits 4: [N, K/2] uint8, element 2j in the low nibble
//            and 2j+1 in the high nibble, each stored as q + 8 (q in [-8, 7])
//   scales   [N, K / group_size] float32 (symmetric: w = q * scale, no zero point)
//   bias     [N] float32 or None
//   out      [..., N] = x @ w^T + bias
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

#include "backends/executorch/ops/vector_math.h"

namespace voxtral::ops {

namespace {

using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

// Portable path: output channels [n_begin, n_end) for all M input rows. Each weight row
// is dequantized once into `w_row` (K floats, stays in L1: w[k] = q[k] * scale of its
// group) and then dotted with every input row.
void linear_rows(const float* x, int64_t M, int64_t K, const int8_t* q8, const uint8_t* q4,
                                      const float* scales, int64_t group_size, const float* bias, int64_t N,
                                      int64_t n_begin, int64_t n_end, float* w_row, float* out) {
  const int64_t groups = K / group_size;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const float* s = scales + n * groups;
    if (q8 != nullptr) {
      const int8_t* q = q8 + n * K;
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t k = g * group_size; k < (g + 1) * group_size; ++k) w_row[k] = s[g] * static_cast<float>(q[k]);
      }
    } else {
      const uint8_t* q = q4 + n * (K / 2);
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t j = g * group_size / 2; j < (g + 1) * group_size / 2; ++j) {
          w_row[2 * j] = s[g] * static_cast<float>(static_cast<int>(q[j] & 0x0F) - 8);
          w_row[2 * j + 1] = s[g] * static_cast<float>(static_cast<int>(q[j] >> 4) - 8);
        }
      }
    }
    for (int64_t m = 0; m < M; ++m) {
      const float sum = dot(x + m * K, w_row, K);
      out[m * N + n] = sum + (bias != nullptr ? bias[n] : 0.f);
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VOXTRAL_HAVE_AVX2_PATH 1
// AVX2 + FMA path, chosen at run time (the wheel is built for baseline x86-64): weights are
// widened 8 at a time straight from int8 / int4 to float lanes, never stored. 4-bit needs
// each input row deinterleaved (`x`: [M, K] as K/2 even-k values then K/2 odd-k values, so
// the low and high nibbles of 16 bytes meet 16 contiguous floats each) and the per-group
// sums of x (`gsum` [M, groups]): the nibbles hold q + 8, and sum(x * (q + 8)) - 8 * sum(x)
// = sum(x * q). Needs group_size % 32 == 0 (4-bit) or % 16 == 0 (8-bit).
// Measured single-threaded on one 3072 x 9216 matrix: 12 G weights/s (the portable path:
// 3.4, benchmarks/results/stt_decoder_variants.md).
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) void linear_rows_avx2(const float* x, const float* gsum, int64_t M, int64_t K,
                                                          const int8_t* q8, const uint8_t* q4, const float* scales,
                                                          int64_t group_size, const float* bias, int64_t N,
                                                          int64_t n_begin, int64_t n_end, float* out) {
  const int64_t groups = K / group_size;
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t n = n_begin; n < n_end; ++n) {
    const float* s = scales + n * groups;
    for (int64_t m = 0; m < M; ++m) {
      __m256 total = _mm256_setzero_ps();
      float offset = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        if (q8 != nullptr) {
          const int8_t* q = q8 + n * K + g * group_size;
          const float* xm = x + m * K + g * group_size;
          for (int64_t i = 0; i < group_size; i += 16) {
            const __m128i* qi = reinterpret_cast<const __m128i*>(q + i);
            __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(qi)));
            __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i + 8))));
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + i), w0, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(xm + i + 8), w1, acc1);
          }
        } else {
          const uint8_t* q = q4 + n * (K / 2) + g * group_size / 2;
          const float* xe = x + m * K + g * group_size / 2;          // even k of this group
          const float* xo = x + m * K + K / 2 + g * group_size / 2;  // odd k
          for (int64_t i = 0; i < group_size / 2; i += 16) {
            __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i));
            __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(xe + i), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(xo + i), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), acc1);
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(xe + i + 8),
                                   _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(xo + i + 8),
                                   _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), acc1);
          }
          offset += 8.f * s[g] * gsum[m * groups + g];
        }
        total = _mm256_fmadd_ps(_mm256_set1_ps(s[g]), _mm256_add_ps(acc0, acc1), total);
      }
      out[m * N + n] = hsum(total) - offset + (bias != nullptr ? bias[n] : 0.f);
    }
  }
}

// The AVX2 path where the CPU has it; VOXTRAL_DISABLE_AVX2=1 forces the portable path (so
// tests, the sanitizer run among them, cover both on one machine).
bool use_avx2_path() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          !(std::getenv("VOXTRAL_DISABLE_AVX2") != nullptr && std::getenv("VOXTRAL_DISABLE_AVX2")[0] == '1');
  return yes;
}
#endif

Tensor& linear_wq_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& qweight, const Tensor& scales,
                      const std::optional<Tensor>& bias, int64_t bits, int64_t group_size, Tensor& out) {
  ET_KERNEL_CHECK_MSG(ctx, bits == 4 || bits == 8, InvalidArgument, out, "linear_wq: bits must be 4 or 8, got %lld",
                      static_cast<long long>(bits));
  ET_KERNEL_CHECK_MSG(ctx, x.dim() >= 1 && x.scalar_type() == ScalarType::Float && out.scalar_type() == ScalarType::Float,
                      InvalidArgument, out, "linear_wq: x and out must be float32");
  ET_KERNEL_CHECK_MSG(ctx, qweight.dim() == 2 && scales.dim() == 2 && scales.scalar_type() == ScalarType::Float,
                      InvalidArgument, out, "linear_wq: qweight and scales must be 2-D, scales float32");
  ET_KERNEL_CHECK_MSG(ctx, qweight.scalar_type() == (bits == 8 ? ScalarType::Char : ScalarType::Byte), InvalidArgument,
                      out, "linear_wq: %lld-bit weights must be %s", static_cast<long long>(bits),
                      bits == 8 ? "int8" : "uint8 (two per byte)");
  const int64_t K = x.size(x.dim() - 1);
  const int64_t N = qweight.size(0);
  const int64_t M = K > 0 ? x.numel() / K : 0;
  ET_KERNEL_CHECK_MSG(ctx, qweight.size(1) == (bits == 8 ? K : K / 2) && (bits == 8 || K % 2 == 0), InvalidArgument,
                      out, "linear_wq: qweight shape does not match the input width %lld", static_cast<long long>(K));
  ET_KERNEL_CHECK_MSG(ctx, group_size > 0 && group_size % 2 == 0 && K % group_size == 0 && scales.size(0) == N &&
                               scales.size(1) == K / group_size,
                      InvalidArgument, out, "linear_wq: scales [%lld, %lld] do not match group size %lld",
                      static_cast<long long>(scales.size(0)), static_cast<long long>(scales.size(1)),
                      static_cast<long long>(group_size));
  if (bias.has_value()) {
    ET_KERNEL_CHECK_MSG(ctx, bias->scalar_type() == ScalarType::Float && bias->numel() == N, InvalidArgument, out,
                        "linear_wq: bias must be float32 [N]");
  }
  std::vector<SizesType> out_sizes(x.sizes().begin(), x.sizes().end());
  out_sizes.back() = static_cast<SizesType>(N);
  ET_KERNEL_CHECK(ctx, executorch::runtime::resize_tensor(out, {out_sizes.data(), out_sizes.size()}) == Error::Ok,
                  InvalidArgument, out);

  const float* bd = bias.has_value() ? bias->const_data_ptr<float>() : nullptr;
  const int8_t* q8 = bits == 8 ? qweight.const_data_ptr<int8_t>() : nullptr;
  const uint8_t* q4 = bits == 4 ? qweight.const_data_ptr<uint8_t>() : nullptr;
  const float* xd = x.const_data_ptr<float>();
  const float* sd = scales.const_data_ptr<float>();
  float* od = out.mutable_data_ptr<float>();
#ifdef VOXTRAL_HAVE_AVX2_PATH
  if (use_avx2_path() && group_size % (bits == 4 ? 32 : 16) == 0) {
    const int64_t groups = K / group_size;
    std::vector<float> xs, gsum;
    if (bits == 4) {  // deinterleave each input row; sum each group of it
      xs.resize(static_cast<size_t>(M * K));
      gsum.assign(static_cast<size_t>(M * groups), 0.f);
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t j = 0; j < K / 2; ++j) {
          xs[m * K + j] = xd[m * K + 2 * j];
          xs[m * K + K / 2 + j] = xd[m * K + 2 * j + 1];
        }
        for (int64_t k = 0; k < K; ++k) gsum[m * groups + k / group_size] += xd[m * K + k];
      }
    }
    const float* xin = bits == 4 ? xs.data() : xd;
    executorch::extension::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      linear_rows_avx2(xin, gsum.data(), M, K, q8, q4, sd, group_size, bd, N, begin, end, od);
    });
    return out;
  }
#endif
  // Threads split the output channels.
  executorch::extension::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> w_row(static_cast<size_t>(K));
    linear_rows(xd, M, K, q8, q4, sd, group_size, bd, N, begin, end, w_row.data(), od);
  });
  return out;
}

}  // namespace

EXECUTORCH_LIBRARY(voxtral, "linear_wq.out", linear_wq_out);

}  // namespace voxtral::ops
