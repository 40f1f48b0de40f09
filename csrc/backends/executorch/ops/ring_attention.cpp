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
#include <cstring>
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

// Keys are taken in blocks of kKeyBlock absolute positions (block b holds positions
// [b * kKeyBlock, (b + 1) * kKeyBlock)), with an online softmax across blocks: each key and
// value row is read once per tile of queries instead of once per query, and a query's
// arithmetic depends only on its own position and the window, never on which call or tile
// it came in (so a stream chunked any way computes the same floats).
constexpr int64_t kKeyBlock = 32;
// Query rows (query heads of one KV head x positions) per work item: their running
// outputs stay in L1 while the key blocks stream past.
constexpr int64_t kRowTile = 32;

// s[j] = sum_d q[d] * kt[d][j] for the block's kKeyBlock keys (kt: the block's keys
// transposed, [D][kKeyBlock]): broadcast-multiply-add over the key axis, which vectorizes
// without the horizontal sums of one dot product per key.
VOXTRAL_MULTIVERSION static void block_scores(const float* q, const float* kt, int64_t D, float* s) {
  float acc[kKeyBlock] = {};
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d];
    const float* row = kt + d * kKeyBlock;
    for (int64_t j = 0; j < kKeyBlock; ++j) acc[j] += qd * row[j];
  }
  for (int64_t j = 0; j < kKeyBlock; ++j) s[j] = acc[j];
}

VOXTRAL_MULTIVERSION static void scale_row(float* x, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

// e^x for x <= 0 (a score minus its row's maximum), written so that loops over it
// vectorize (std::exp does not): e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln(2) / 2,
// e^r by Cephes' degree-6 polynomial (within 2 ulp of expf); below -87 it returns 0.
static inline float exp_nonpositive(float x) {
  const float clamped = std::max(x, -87.f);
  const float n = std::floor(clamped * 1.44269504088896341f + 0.5f);
  const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return x < -87.f ? 0.f : p * two_n;
}

// For keys j0..j1 of a block: e_j = exp(s_j - max), acc += sum_j e_j v_j (v: [kKeyBlock][D]);
// returns sum_j e_j.
VOXTRAL_MULTIVERSION static float accumulate_block(const float* s, int64_t j0, int64_t j1, float max, const float* v,
                                                   int64_t D, float* acc) {
  float e[kKeyBlock];
  float sum = 0.f;
  for (int64_t j = j0; j <= j1; ++j) e[j] = exp_nonpositive(s[j] - max);
  for (int64_t j = j0; j <= j1; ++j) sum += e[j];
  // 32 output columns at a time, held in registers across the block's keys.
  int64_t d0 = 0;
  for (; d0 + 32 <= D; d0 += 32) {
    float a[32];
    for (int i = 0; i < 32; ++i) a[i] = acc[d0 + i];
    for (int64_t j = j0; j <= j1; ++j) {
      const float w = e[j];
      const float* row = v + j * D + d0;
      for (int i = 0; i < 32; ++i) a[i] += w * row[i];
    }
    for (int i = 0; i < 32; ++i) acc[d0 + i] = a[i];
  }
  for (int64_t j = j0; j <= j1 && d0 < D; ++j) {
    for (int64_t d = d0; d < D; ++d) acc[d] += e[j] * v[j * D + d];
  }
  return sum;
}

// Per-thread scratch for one tile: R rows of D.
struct TileScratch {
  std::vector<float> q, acc, kt, v, max, sum;
  void resize(int64_t R, int64_t D) {
    q.resize(R * D);
    acc.resize(R * D);
    kt.resize(D * kKeyBlock);
    v.resize(kKeyBlock * D);
    max.resize(R);
    sum.resize(R);
  }
};

// Attention of query positions [t0, t1) x the `group` query heads of KV head `kv` (batch
// b) over their visible keys. Row r is position t0 + r / group, query head kv * group + r % group.
template <typename T>
void attend_tile(const T* qd, const T* kd, const T* vd, T* od, int64_t b, int64_t kv, int64_t t0, int64_t t1,
                 int64_t T_, int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t group, int64_t p0, int64_t window,
                 float scale, TileScratch& w) {
  const int64_t R = (t1 - t0) * group;
  w.resize(R, D);
  auto q_row = [&](int64_t r) -> int64_t {  // element offset of row r in q / out
    return ((b * T_ + t0 + r / group) * Hq + kv * group + r % group) * D;
  };
  for (int64_t r = 0; r < R; ++r) {
    const T* src = qd + q_row(r);
    for (int64_t d = 0; d < D; ++d) w.q[r * D + d] = static_cast<float>(src[d]) * scale;
  }
  std::fill(w.acc.begin(), w.acc.end(), 0.f);
  std::fill(w.max.begin(), w.max.end(), -INFINITY);
  std::fill(w.sum.begin(), w.sum.end(), 0.f);
  const T* k_head = kd + (b * Hkv + kv) * S * D;
  const T* v_head = vd + (b * Hkv + kv) * S * D;
  const int64_t lo = std::max<int64_t>(0, p0 + t0 - window + 1), hi = p0 + t1 - 1;
  float s[kKeyBlock];
  for (int64_t block = lo / kKeyBlock * kKeyBlock; block <= hi; block += kKeyBlock) {
    const int64_t first = std::max(block, lo), last = std::min(block + kKeyBlock - 1, hi);
    // The block's keys transposed and its values, as float32; absent keys are zeros.
    std::fill(w.kt.begin(), w.kt.end(), 0.f);
    for (int64_t p = first; p <= last; ++p) {
      const int64_t j = p - block;
      const T* k = k_head + (p % S) * D;
      const T* v = v_head + (p % S) * D;
      for (int64_t d = 0; d < D; ++d) {
        w.kt[d * kKeyBlock + j] = static_cast<float>(k[d]);
        w.v[j * D + d] = static_cast<float>(v[d]);
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t p = p0 + t0 + r / group;  // this row's position: it sees (p - window, p]
      const int64_t j0 = std::max(std::max<int64_t>(0, p - window + 1), first) - block;
      const int64_t j1 = std::min(p, last) - block;
      if (j0 > j1) continue;
      block_scores(w.q.data() + r * D, w.kt.data(), D, s);
      float block_max = -INFINITY;
      for (int64_t j = j0; j <= j1; ++j) block_max = std::max(block_max, s[j]);
      float* acc = w.acc.data() + r * D;
      if (block_max > w.max[r]) {  // rescale what was summed under the old maximum
        const float factor = std::exp(w.max[r] - block_max);
        scale_row(acc, factor, D);
        w.sum[r] *= factor;
        w.max[r] = block_max;
      }
      w.sum[r] += accumulate_block(s, j0, j1, w.max[r], w.v.data(), D, acc);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    T* dst = od + q_row(r);
    const float inv = 1.f / w.sum[r];
    for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<T>(w.acc[r * D + d] * inv);
  }
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
  const int64_t positions_per_tile = std::max<int64_t>(1, kRowTile / group);
  const int64_t tiles = (T_ + positions_per_tile - 1) / positions_per_tile;

  // One work item per (batch, KV head, tile of positions); threads split them.
  executorch::extension::parallel_for(0, B * Hkv * tiles, 1, [&](int64_t begin, int64_t end) {
    TileScratch scratch;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t tile = item % tiles, kv = (item / tiles) % Hkv, b = item / (tiles * Hkv);
      const int64_t t0 = tile * positions_per_tile, t1 = std::min(T_, t0 + positions_per_tile);
      attend_tile<T>(qd, kd, vd, od, b, kv, t0, t1, T_, Hq, Hkv, S, D, group, p0, window, scale, scratch);
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
