// voxtral::linear_dq4.out: a linear layer with int4 weights and int8 activations quantized
// at run time, per row and weight group (the arithmetic: linear_dq4_kernel.h).
//
// Why a custom op beside XNNPACK's 8da4w: on x86 CPUs with AVX2 and no VNNI, XNNPACK's int4
// GEMMs run at 100-126 GFLOP/s on two cores, below its own int8 GEMMs (~190), so the many-row
// calls (encoder chunks, prefill, speculative verify calls) were compute-bound there. This
// kernel adds int4 x int8 products in 16-bit lanes for a whole group before widening them.
//
// Shapes (the PyTorch reference, with the exact semantics, is
// voxtral_native/export/ops.py `linear_dq4_reference`):
//   x        [..., K]  float32
//   qweight  [N, K/2] uint8, 64-weight chunks of 32 bytes (ops.pack_int4_chunks)
//   scales   [N, K / group_size] float32 (symmetric: w = q * scale)
//   bias     [N] float32 or None
//   out      [..., N]
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

#include "backends/executorch/ops/linear_dq4_kernel.h"

namespace voxtral::ops {

namespace {

using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

// AVX2 where the CPU has it; VOXTRAL_DISABLE_AVX2=1 forces the portable path (the same switch
// as linear_wq, so the tests and the sanitizer run cover both on one machine).
bool use_avx2_path() {
#ifdef VOXTRAL_DQ4_AVX2
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          !(std::getenv("VOXTRAL_DISABLE_AVX2") != nullptr && std::getenv("VOXTRAL_DISABLE_AVX2")[0] == '1');
  return yes;
#else
  return false;
#endif
}

Tensor& linear_dq4_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& qweight, const Tensor& scales,
                       const std::optional<Tensor>& bias, int64_t group_size, Tensor& out) {
  ET_KERNEL_CHECK_MSG(ctx, x.dim() >= 1 && x.scalar_type() == ScalarType::Float && out.scalar_type() == ScalarType::Float,
                      InvalidArgument, out, "linear_dq4: x and out must be float32");
  ET_KERNEL_CHECK_MSG(ctx, qweight.dim() == 2 && qweight.scalar_type() == ScalarType::Byte, InvalidArgument, out,
                      "linear_dq4: qweight must be 2-D uint8 (two weights per byte)");
  ET_KERNEL_CHECK_MSG(ctx, scales.dim() == 2 && scales.scalar_type() == ScalarType::Float, InvalidArgument, out,
                      "linear_dq4: scales must be 2-D float32");
  ET_KERNEL_CHECK_MSG(ctx, dq4::group_size_ok(group_size), InvalidArgument, out,
                      "linear_dq4: group size %lld must be a multiple of 64 and at most 256",
                      static_cast<long long>(group_size));
  const int64_t K = x.size(x.dim() - 1);
  const int64_t N = qweight.size(0);
  const int64_t M = K > 0 ? x.numel() / K : 0;
  ET_KERNEL_CHECK_MSG(ctx, K % group_size == 0 && qweight.size(1) * 2 == K, InvalidArgument, out,
                      "linear_dq4: qweight [%lld, %lld] does not match the input width %lld (a multiple of %lld)",
                      static_cast<long long>(N), static_cast<long long>(qweight.size(1)), static_cast<long long>(K),
                      static_cast<long long>(group_size));
  ET_KERNEL_CHECK_MSG(ctx, scales.size(0) == N && scales.size(1) == K / group_size, InvalidArgument, out,
                      "linear_dq4: scales [%lld, %lld] do not match group size %lld",
                      static_cast<long long>(scales.size(0)), static_cast<long long>(scales.size(1)),
                      static_cast<long long>(group_size));
  if (bias.has_value()) {
    ET_KERNEL_CHECK_MSG(ctx, bias->scalar_type() == ScalarType::Float && bias->numel() == N, InvalidArgument, out,
                        "linear_dq4: bias must be float32 [N]");
  }
  std::vector<SizesType> out_sizes(x.sizes().begin(), x.sizes().end());
  out_sizes.back() = static_cast<SizesType>(N);
  ET_KERNEL_CHECK(ctx, executorch::runtime::resize_tensor(out, {out_sizes.data(), out_sizes.size()}) == Error::Ok,
                  InvalidArgument, out);
  if (M == 0 || N == 0) return out;

  const int64_t groups = K / group_size;
  std::vector<int8_t> xq(static_cast<size_t>(M * K));
  std::vector<float> x_scales(static_cast<size_t>(M * groups));
  std::vector<int32_t> x_sums(static_cast<size_t>(M * groups));
  const float* xd = x.const_data_ptr<float>();
  executorch::extension::parallel_for(0, M, 4, [&](int64_t begin, int64_t end) {
    dq4::quantize_rows(xd, begin, end, K, group_size, xq.data(), x_scales.data(), x_sums.data());
  });

  const uint8_t* wd = qweight.const_data_ptr<uint8_t>();
  const float* sd = scales.const_data_ptr<float>();
  const float* bd = bias.has_value() ? bias->const_data_ptr<float>() : nullptr;
  float* od = out.mutable_data_ptr<float>();
  const bool avx2 = use_avx2_path();
  // Threads split the output channels in whole tiles of 4 (the kernel's widest).
  executorch::extension::parallel_for(0, (N + 3) / 4, 4, [&](int64_t begin, int64_t end) {
    const int64_t n_begin = begin * 4, n_end = std::min(end * 4, N);
#ifdef VOXTRAL_DQ4_AVX2
    if (avx2) {
      dq4::gemm_avx2(xq.data(), x_scales.data(), x_sums.data(), M, K, group_size, wd, sd, bd, N, n_begin, n_end, od);
      return;
    }
#endif
    dq4::gemm_portable(xq.data(), x_scales.data(), x_sums.data(), M, K, group_size, wd, sd, bd, N, n_begin, n_end, od);
  });
  (void)avx2;
  return out;
}

}  // namespace

EXECUTORCH_LIBRARY(voxtral, "linear_dq4.out", linear_dq4_out);

}  // namespace voxtral::ops
