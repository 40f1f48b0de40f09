// voxtral::ring_sdpa.out: attention of a chunk of queries over a ring KV cache.
//
// Why a custom op: the ExecuTorch wheel has no LLM attention ops, and attention built
// from standard ATen ops runs undelegated over the whole allocated cache (132 ms per
// layer at 4000 positions, executorch-wheel.md). This kernel reads only the filled,
// in-window part of the cache.
//
// Shapes (the PyTorch reference, with the exact semantics, is
// voxtral_native/export/ops.py `ring_sdpa`):
//   q          [B, T, Hq, D]   queries at absolute positions start_pos + t
//   k_cache    [B, Hkv, S, D]  slot s holds the newest position p with p % S == s
//   v_cache    [B, Hkv, S, D]
//   start_pos  [1]             int64, absolute position of q[:, 0]
//   window     keys at positions (p - window, p] are visible to the query at p
//   out        [B, T, Hq, D]
// q, caches and out share one dtype: float32, or bfloat16 / float16 (half-precision
// caches halve the memory a session holds and the bytes a step reads); the arithmetic is
// float32 either way (half rows are widened as they are read).
// Query head h reads KV head h / (Hq / Hkv) (grouped-query attention). The chunk's own
// keys must already be in the cache, and S >= window + T - 1 so none of the keys a query
// needs has been overwritten by a later query of the same chunk.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

#include "backends/executorch/ops/vector_math.h"

namespace voxtral::ops {

namespace {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

// A row of D values as float32: float rows are used in place, half rows widened into `buf`.
template <typename T>
const float* as_float(const T* row, int64_t D, float* buf) {
  if constexpr (std::is_same_v<T, float>) {
    return row;
  } else {
    for (int64_t d = 0; d < D; ++d) buf[d] = static_cast<float>(row[d]);
    return buf;
  }
}

// One query row against its visible keys: two passes (scores, then the weighted sum),
// numerically softmax(q k^T * scale) v up to float summation order. `scratch`: 3 x D floats.
template <typename T>
void attend_one(const T* q_in, const T* k_head, const T* v_head, int64_t S, int64_t D, int64_t first, int64_t last,
                float scale, float* scores, float* scratch, T* out_row) {
  const float* q = as_float(q_in, D, scratch);
  float* row = scratch + D;
  float* out = scratch + 2 * D;
  float max_score = -INFINITY;
  for (int64_t p = first; p <= last; ++p) {
    float dot_qk = dot(q, as_float(k_head + (p % S) * D, D, row), D) * scale;
    scores[p - first] = dot_qk;
    max_score = std::max(max_score, dot_qk);
  }
  float sum = 0.f;
  for (int64_t i = 0; i <= last - first; ++i) {
    scores[i] = std::exp(scores[i] - max_score);
    sum += scores[i];
  }
  const float inv = 1.f / sum;
  std::fill(out, out + D, 0.f);
  for (int64_t p = first; p <= last; ++p) {
    add_scaled(scores[p - first] * inv, as_float(v_head + (p % S) * D, D, row), out, D);
  }
  for (int64_t d = 0; d < D; ++d) out_row[d] = static_cast<T>(out[d]);
}

template <typename T>
void ring_sdpa_typed(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t p0, int64_t window,
                     Tensor& out) {
  const int64_t B = q.size(0), T_ = q.size(1), Hq = q.size(2), D = q.size(3);
  const int64_t Hkv = k_cache.size(1), S = k_cache.size(2);
  const int64_t group = Hq / Hkv;
  const float scale = 1.f / std::sqrt(static_cast<float>(D));
  const T* qd = q.const_data_ptr<T>();
  const T* kd = k_cache.const_data_ptr<T>();
  const T* vd = v_cache.const_data_ptr<T>();
  T* od = out.mutable_data_ptr<T>();
  const int64_t visible = std::min(window, p0 + T_);

  // One work item per (batch, query head, query); heads dominate, so threads split them.
  executorch::extension::parallel_for(0, B * Hq * T_, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(visible));
    std::vector<float> scratch(static_cast<size_t>(3 * D));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item % T_, h = (item / T_) % Hq, b = item / (T_ * Hq);
      const int64_t p = p0 + t;
      const int64_t first = std::max<int64_t>(0, p - window + 1);
      const int64_t kv = b * Hkv + h / group;
      attend_one<T>(qd + ((b * T_ + t) * Hq + h) * D, kd + kv * S * D, vd + kv * S * D, S, D, first, p, scale,
                    scores.data(), scratch.data(), od + ((b * T_ + t) * Hq + h) * D);
    }
  });
}

Tensor& ring_sdpa_out(KernelRuntimeContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                      const Tensor& start_pos, int64_t window, Tensor& out) {
  ET_KERNEL_CHECK_MSG(ctx, q.dim() == 4 && k_cache.dim() == 4 && v_cache.dim() == 4, InvalidArgument, out,
                      "ring_sdpa: q and caches must be 4-D");
  const ScalarType dtype = q.scalar_type();
  ET_KERNEL_CHECK_MSG(ctx,
                      (dtype == ScalarType::Float || dtype == ScalarType::BFloat16 || dtype == ScalarType::Half) &&
                          k_cache.scalar_type() == dtype && v_cache.scalar_type() == dtype &&
                          out.scalar_type() == dtype,
                      InvalidArgument, out, "ring_sdpa: q, caches and out must share one dtype: float32, bfloat16 or float16");
  ET_KERNEL_CHECK_MSG(ctx, start_pos.scalar_type() == ScalarType::Long && start_pos.numel() == 1, InvalidArgument,
                      out, "ring_sdpa: start_pos must be one int64");
  const int64_t B = q.size(0), T = q.size(1), Hq = q.size(2), D = q.size(3);
  const int64_t Hkv = k_cache.size(1), S = k_cache.size(2);
  ET_KERNEL_CHECK_MSG(ctx, k_cache.size(0) == B && k_cache.size(3) == D && Hkv > 0 && Hq % Hkv == 0, InvalidArgument,
                      out, "ring_sdpa: cache shape does not match q");
  ET_KERNEL_CHECK_MSG(ctx,
                      v_cache.size(0) == B && v_cache.size(1) == Hkv && v_cache.size(2) == S && v_cache.size(3) == D,
                      InvalidArgument, out, "ring_sdpa: v_cache shape differs from k_cache");
  ET_KERNEL_CHECK_MSG(ctx, window >= 1 && S >= std::min<int64_t>(window, INT64_MAX - T) + T - 1, InvalidArgument, out,
                      "ring_sdpa: cache of %lld slots is too small for window %lld and %lld queries",
                      static_cast<long long>(S), static_cast<long long>(window), static_cast<long long>(T));
  const int64_t p0 = start_pos.const_data_ptr<int64_t>()[0];
  ET_KERNEL_CHECK_MSG(ctx, p0 >= 0, InvalidArgument, out, "ring_sdpa: negative start_pos");
  ET_KERNEL_CHECK(ctx, executorch::runtime::resize_tensor(out, q.sizes()) == Error::Ok, InvalidArgument, out);

  switch (dtype) {
    case ScalarType::BFloat16: ring_sdpa_typed<executorch::aten::BFloat16>(q, k_cache, v_cache, p0, window, out); break;
    case ScalarType::Half: ring_sdpa_typed<executorch::aten::Half>(q, k_cache, v_cache, p0, window, out); break;
    default: ring_sdpa_typed<float>(q, k_cache, v_cache, p0, window, out); break;
  }
  return out;
}

}  // namespace

EXECUTORCH_LIBRARY(voxtral, "ring_sdpa.out", ring_sdpa_out);

}  // namespace voxtral::ops
