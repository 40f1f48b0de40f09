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
#include <optional>
#include <vector>

#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

namespace voxtral::ops {

namespace {

using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VOXTRAL_MULTIVERSION __attribute__((target_clones("avx2,fma", "default")))
#else
#define VOXTRAL_MULTIVERSION
#endif

// sum_k x[k] * q[k] over one group, 8 independent accumulators so that it vectorizes
// without -ffast-math (see ring_attention.cpp).
VOXTRAL_MULTIVERSION float dot_q8(const float* x, const int8_t* q, int64_t n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += x[k + j] * static_cast<float>(q[k + j]);
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; k < n; ++k) sum += x[k] * static_cast<float>(q[k]);
  return sum;
}

// Unpacks n (even) int4 values into floats once per weight row and group, so that every
// input row reuses them.
VOXTRAL_MULTIVERSION void unpack_q4(const uint8_t* packed, int64_t n, float* out) {
  for (int64_t j = 0; j < n / 2; ++j) {
    out[2 * j] = static_cast<float>(static_cast<int>(packed[j] & 0x0F) - 8);
    out[2 * j + 1] = static_cast<float>(static_cast<int>(packed[j] >> 4) - 8);
  }
}

VOXTRAL_MULTIVERSION float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; k < n; ++k) sum += a[k] * b[k];
  return sum;
}

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

  const float* xd = x.const_data_ptr<float>();
  const float* sd = scales.const_data_ptr<float>();
  const float* bd = bias.has_value() ? bias->const_data_ptr<float>() : nullptr;
  float* od = out.mutable_data_ptr<float>();
  const int64_t groups = K / group_size;

  // Threads split the output channels: each weight row is read once and used for all M
  // input rows while it is in cache.
  executorch::extension::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(bits == 4 ? static_cast<size_t>(group_size) : 0);
    for (int64_t n = begin; n < end; ++n) {
      const float b = bd ? bd[n] : 0.f;
      for (int64_t m = 0; m < M; ++m) od[m * N + n] = b;
      for (int64_t g = 0; g < groups; ++g) {
        const float s = sd[n * groups + g];
        const int64_t k0 = g * group_size;
        if (bits == 8) {
          const int8_t* q = qweight.const_data_ptr<int8_t>() + n * K + k0;
          for (int64_t m = 0; m < M; ++m) od[m * N + n] += s * dot_q8(xd + m * K + k0, q, group_size);
        } else {
          unpack_q4(qweight.const_data_ptr<uint8_t>() + n * (K / 2) + k0 / 2, group_size, row.data());
          for (int64_t m = 0; m < M; ++m) od[m * N + n] += s * dot_f32(xd + m * K + k0, row.data(), group_size);
        }
      }
    }
  });
  return out;
}

}  // namespace

EXECUTORCH_LIBRARY(voxtral, "linear_wq.out", linear_wq_out);

}  // namespace voxtral::ops
