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

// Keys are taken in blocks of kKeyBlock absolute positions (block b holds positions
// [b * kKeyBlock, (b + 1) * kKeyBlock)), with an online softmax across blocks: each key and
// value row is read once per tile of queries instead of once per query, and a query's
// arithmetic depends only on its own position and the window, never on which call or tile
// it came in (so a stream chunked any way computes the same floats).
constexpr int64_t kKeyBlock = 32;
// Query rows (query heads of one KV head x positions) per work item: each key block is
// gathered (transposed, widened) once per tile, so a larger tile gathers less per row (an
// offline encoder call, 128 frames of one head, is one tile); the tile's queries and running
// outputs (2 x 128 x D floats) stay in L2 while the key blocks stream past.
constexpr int64_t kRowTile = 128;

// 16 floats / int32s (8 floats) as GCC vector extensions: each target clone compiles them to its
// widest registers (one AVX-512 register, two AVX2 ones, four SSE ones), where scalar loops did
// not vectorize, or vectorized in narrow pieces.
#pragma GCC diagnostic ignored "-Wpsabi"  // the note that 64-byte vector arguments differ by target (GCC, clang)
typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));

// Rows of one tile taken together in the two block loops below: kRowsAtOnce x kLanes
// accumulators are independent FMA chains, enough to hide the FMA latency, and each key / value
// element loaded is used kRowsAtOnce times (one row at a time had 2 chains). Every row's
// arithmetic is the same whichever rows it is grouped with.
constexpr int64_t kRowsAtOnce = 4;

// Keys (block_scores) or value columns (accumulate_block) one pass of the loops below holds in
// registers for its 4 rows: 32 with AVX-512, where 4 x 32 accumulators take 8 of 32 registers;
// 16 elsewhere, since 4 x 32 would take all 16 of AVX2's registers, and the loop then reloads
// every key row once per query row and spills two accumulators: load-bound, not FMA-bound. (A
// pass over fewer keys or columns changes which sums are in registers, not any sum's order.)
static int64_t lanes_per_pass() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const int64_t lanes = __builtin_cpu_supports("avx512f") ? 32 : 16;
  return lanes;
#else
  return 16;
#endif
}

// s[r][j0 + j] = sum_d q[r][d] * kt[d][j0 + j] for kRowsAtOnce rows of q (row stride D) and
// kVecs vectors V of the block's keys from j0 (kt: the block's keys transposed, [D][kKeyBlock]):
// broadcast-multiply-add over the key axis, without the horizontal sums of one dot product per
// key. Written with vector types: GCC's vectorizer turned the 16-key loop into 4-lane pieces.
template <typename V, int kVecs>
static inline __attribute__((always_inline)) void block_scores_pass(const float* q, const float* kt, int64_t D,
                                                                    int64_t j0, float (*s)[kKeyBlock]) {
  constexpr int64_t kWidth = sizeof(V) / sizeof(float);
  V acc[kRowsAtOnce][kVecs] = {};
  for (int64_t d = 0; d < D; ++d) {
    V k[kVecs];
    for (int i = 0; i < kVecs; ++i) std::memcpy(&k[i], kt + d * kKeyBlock + j0 + i * kWidth, sizeof(V));
    for (int64_t r = 0; r < kRowsAtOnce; ++r) {
      const float qd = q[r * D + d];  // a scalar times a vector: broadcast
      for (int i = 0; i < kVecs; ++i) acc[r][i] += qd * k[i];
    }
  }
  for (int64_t r = 0; r < kRowsAtOnce; ++r)
    for (int i = 0; i < kVecs; ++i) std::memcpy(s[r] + j0 + i * kWidth, &acc[r][i], sizeof(V));
}

VOXTRAL_MULTIVERSION static void block_scores_32(const float* q, const float* kt, int64_t D, float (*s)[kKeyBlock]) {
  block_scores_pass<F16, 2>(q, kt, D, 0, s);
}
VOXTRAL_MULTIVERSION static void block_scores_16(const float* q, const float* kt, int64_t D, float (*s)[kKeyBlock]) {
  block_scores_pass<F8, 2>(q, kt, D, 0, s);
  block_scores_pass<F8, 2>(q, kt, D, 16, s);
}
// The scores of kRowsAtOnce rows against the block's keys.
static void block_scores(const float* q, const float* kt, int64_t D, float (*s)[kKeyBlock]) {
  if (lanes_per_pass() == 32) {
    block_scores_32(q, kt, D, s);
  } else {
    block_scores_16(q, kt, D, s);
  }
}

VOXTRAL_MULTIVERSION static void scale_row(float* x, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

// The block softmax below is written in vectors: its scalar loop did not vectorize (a floor,
// an int conversion and selects in one loop). Two 16-lane vectors a block with AVX-512; four
// 8-lane ones elsewhere, since GCC lowers the compares and selects of a 16-lane vector on AVX2
// lane by lane. Both orders of the reduction trees below are the same: a block's weights and
// sum come out the same either way.
static_assert(kKeyBlock == 32, "block_weights takes a block as two 16-lane or four 8-lane vectors");
typedef int32_t I8 __attribute__((vector_size(32)));

// Lane permutations of the reduction trees: swap halves, quarters, pairs, neighbours (GCC's
// __builtin_shuffle takes the lanes as a vector, clang's __builtin_shufflevector as constants:
// the macOS build is clang).
#if defined(__clang__)
#define VOXTRAL_PERMUTE(v, Lanes, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define VOXTRAL_PERMUTE(v, Lanes, ...) __builtin_shuffle(v, Lanes{__VA_ARGS__})
#endif
static inline __attribute__((always_inline)) F16 swap8(F16 v) {
  return VOXTRAL_PERMUTE(v, I16, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}
static inline __attribute__((always_inline)) F16 swap4(F16 v) {
  return VOXTRAL_PERMUTE(v, I16, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
}
static inline __attribute__((always_inline)) F16 swap2(F16 v) {
  return VOXTRAL_PERMUTE(v, I16, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
static inline __attribute__((always_inline)) F16 swap1(F16 v) {
  return VOXTRAL_PERMUTE(v, I16, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
}
static inline __attribute__((always_inline)) F8 swap4(F8 v) { return VOXTRAL_PERMUTE(v, I8, 4, 5, 6, 7, 0, 1, 2, 3); }
static inline __attribute__((always_inline)) F8 swap2(F8 v) { return VOXTRAL_PERMUTE(v, I8, 2, 3, 0, 1, 6, 7, 4, 5); }
static inline __attribute__((always_inline)) F8 swap1(F8 v) { return VOXTRAL_PERMUTE(v, I8, 1, 0, 3, 2, 5, 4, 7, 6); }

// Always inlined (into each target clone of the caller, which then passes no vector by value).
template <typename V>
static inline __attribute__((always_inline)) V lanewise_max(V a, V b) {
  return a > b ? a : b;
}

// The maximum / sum of a vector's lanes, in a fixed tree (the same order for every row). A
// 16-lane vector's first step leaves its two halves equal, after which the tree is the 8-lane one.
static inline __attribute__((always_inline)) float lane_max(F8 v) {
  v = lanewise_max(v, swap4(v));
  v = lanewise_max(v, swap2(v));
  v = lanewise_max(v, swap1(v));
  return v[0];
}
static inline __attribute__((always_inline)) float lane_max(F16 v) {
  v = lanewise_max(v, swap8(v));
  v = lanewise_max(v, swap4(v));
  v = lanewise_max(v, swap2(v));
  v = lanewise_max(v, swap1(v));
  return v[0];
}

static inline __attribute__((always_inline)) float lane_sum(F8 v) {
  v += swap4(v);
  v += swap2(v);
  v += swap1(v);
  return v[0];
}
static inline __attribute__((always_inline)) float lane_sum(F16 v) {
  v += swap8(v);
  v += swap4(v);
  v += swap2(v);
  v += swap1(v);
  return v[0];
}

// e^x for x in [-87, 0] (a score minus its row's maximum, clamped), lane by lane (V: F8 or F16
// floats, I: int32s of the same width): e^x = 2^n e^r with n = round(x / ln 2) (by adding and
// subtracting 1.5 * 2^23, which also leaves n in the low bits of the sum), |r| <= ln(2) / 2,
// e^r by Cephes' degree-6 polynomial (within 2 ulp of expf).
template <typename V, typename I>
static inline __attribute__((always_inline)) V exp_clamped(V x) {
  const float magic = 12582912.f;  // 1.5 * 2^23
  const V shifted = x * 1.44269504088896341f + magic;
  const V n = shifted - magic;
  const V r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 in two parts
  V p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const I n_int = reinterpret_cast<I>(shifted) - 0x4B400000;  // n, in [-126, 0]
  return p * reinterpret_cast<V>((n_int + 127) << 23);        // times 2^n
}

// exp(x) for the lanes of x at or above -87 (about the smallest normal float's log), else 0:
// -inf (an unseen key) gives 0.
template <typename V, typename I>
static inline __attribute__((always_inline)) V weight(V x) {
  const V floor = V{} - 87.f, zero = V{};
  return x >= floor ? exp_clamped<V, I>(x >= floor ? x : floor) : zero;
}

// Raises a row's running maximum `max` to block_max if larger; returns the factor (<= 1) that
// what the row summed so far must be scaled by.
static inline __attribute__((always_inline)) float raise_max(float block_max, float& max) {
  float factor = 1.f;
  if (block_max > max) {
    factor = std::exp(max - block_max);  // 0 for the row's first block (max = -inf)
    max = block_max;
  }
  return factor;
}

// The block's softmax weights for one row, from its scores s (-inf for the keys the row does
// not see; at least one seen): raises the row's running maximum `max` to the block's if larger
// (returning the factor, <= 1, that what was summed so far must be scaled by), then
// e[j] = exp(s[j] - max) (0 below e^-87, so 0 for unseen keys) and adds sum_j e[j] to `sum`.
// The arithmetic is the same for every row, call and tiling, and in both versions.
VOXTRAL_MULTIVERSION static float block_weights_16(const float* s, float& max, float& sum, float* e) {
  F16 x[2];
  for (int i = 0; i < 2; ++i) std::memcpy(&x[i], s + 16 * i, sizeof(F16));
  const float factor = raise_max(lane_max(lanewise_max(x[0], x[1])), max);
  F16 w[2];
  for (int i = 0; i < 2; ++i) {
    w[i] = weight<F16, I16>(x[i] - max);  // x - max <= 0; -inf where unseen
    std::memcpy(e + 16 * i, &w[i], sizeof(F16));
  }
  sum = sum * factor + lane_sum(w[0] + w[1]);
  return factor;
}
// The same over 8-lane vectors: x[i] holds keys 8i..8i+7, so (x0 + x2) + (x1 + x3) is lane for
// lane the 16-lane tree's first step, (lo + hi) + swap8(lo + hi).
VOXTRAL_MULTIVERSION static float block_weights_8(const float* s, float& max, float& sum, float* e) {
  F8 x[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&x[i], s + 8 * i, sizeof(F8));
  const float factor = raise_max(lane_max(lanewise_max(lanewise_max(x[0], x[2]), lanewise_max(x[1], x[3]))), max);
  F8 w[4];
  for (int i = 0; i < 4; ++i) {
    w[i] = weight<F8, I8>(x[i] - max);
    std::memcpy(e + 8 * i, &w[i], sizeof(F8));
  }
  sum = sum * factor + lane_sum((w[0] + w[2]) + (w[1] + w[3]));
  return factor;
}
static float block_weights(const float* s, float& max, float& sum, float* e) {
  return lanes_per_pass() == 32 ? block_weights_16(s, max, sum, e) : block_weights_8(s, max, sum, e);
}

// acc[r][d] += sum_j e[r][j] * v[j][d] for kRowsAtOnce rows (acc row stride D; v: [kKeyBlock][D]),
// kVecs vectors V of output columns of each row at a time, held in registers across the block's
// keys. A key a row does not see has e = 0, and adding 0 * v (v finite) leaves its sum unchanged.
template <typename V, int kVecs>
static inline __attribute__((always_inline)) void accumulate_block_passes(const float (*e)[kKeyBlock], const float* v,
                                                                          int64_t D, float* acc) {
  constexpr int64_t kWidth = sizeof(V) / sizeof(float), kLanes = kVecs * kWidth;
  int64_t d0 = 0;
  for (; d0 + kLanes <= D; d0 += kLanes) {
    V a[kRowsAtOnce][kVecs];
    for (int64_t r = 0; r < kRowsAtOnce; ++r)
      for (int i = 0; i < kVecs; ++i) std::memcpy(&a[r][i], acc + r * D + d0 + i * kWidth, sizeof(V));
    for (int64_t j = 0; j < kKeyBlock; ++j) {
      V row[kVecs];
      for (int i = 0; i < kVecs; ++i) std::memcpy(&row[i], v + j * D + d0 + i * kWidth, sizeof(V));
      for (int64_t r = 0; r < kRowsAtOnce; ++r) {
        const float w = e[r][j];  // a scalar times a vector: broadcast
        for (int i = 0; i < kVecs; ++i) a[r][i] += w * row[i];
      }
    }
    for (int64_t r = 0; r < kRowsAtOnce; ++r)
      for (int i = 0; i < kVecs; ++i) std::memcpy(acc + r * D + d0 + i * kWidth, &a[r][i], sizeof(V));
  }
  for (int64_t r = 0; r < kRowsAtOnce && d0 < D; ++r) {
    for (int64_t j = 0; j < kKeyBlock; ++j) {
      for (int64_t d = d0; d < D; ++d) acc[r * D + d] += e[r][j] * v[j * D + d];
    }
  }
}

VOXTRAL_MULTIVERSION static void accumulate_block_32(const float (*e)[kKeyBlock], const float* v, int64_t D,
                                                     float* acc) {
  accumulate_block_passes<F16, 2>(e, v, D, acc);
}
VOXTRAL_MULTIVERSION static void accumulate_block_16(const float (*e)[kKeyBlock], const float* v, int64_t D,
                                                     float* acc) {
  accumulate_block_passes<F8, 2>(e, v, D, acc);
}
static void accumulate_block(const float (*e)[kKeyBlock], const float* v, int64_t D, float* acc) {
  if (lanes_per_pass() == 32) {
    accumulate_block_32(e, v, D, acc);
  } else {
    accumulate_block_16(e, v, D, acc);
  }
}

// The keys at positions first..last of the block starting at position `block`, transposed
// (kt [D][kKeyBlock]), and their values (v [kKeyBlock][D]); the block's other keys are zeros,
// so that their zero weights add exactly nothing, whatever unfilled cache slots hold.
VOXTRAL_MULTIVERSION static void gather_block(const float* k_head, const float* v_head, int64_t S, int64_t D,
                                              int64_t block, int64_t first, int64_t last, float* kt, float* v) {
  for (int64_t i = 0; i < D * kKeyBlock; ++i) kt[i] = 0.f;
  for (int64_t i = 0; i < kKeyBlock * D; ++i) v[i] = 0.f;
  for (int64_t p = first; p <= last; ++p) {
    const int64_t j = p - block;
    const float* k = k_head + (p % S) * D;
    for (int64_t d = 0; d < D; ++d) kt[d * kKeyBlock + j] = k[d];
    std::memcpy(v + j * D, v_head + (p % S) * D, D * sizeof(float));
  }
}

// Per-thread scratch for one tile: R rows of D (R rounded up to kRowsAtOnce; padding rows are
// zero queries whose results are dropped).
struct TileScratch {
  std::vector<float> q, acc, kt, v, max, sum;
  void resize(int64_t R, int64_t D) {
    const int64_t padded = (R + kRowsAtOnce - 1) / kRowsAtOnce * kRowsAtOnce;
    q.assign(padded * D, 0.f);
    acc.assign(padded * D, 0.f);
    kt.resize(D * kKeyBlock);
    v.resize(kKeyBlock * D);
    max.assign(padded, -INFINITY);
    sum.assign(padded, 0.f);
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
  const T* k_head = kd + (b * Hkv + kv) * S * D;
  const T* v_head = vd + (b * Hkv + kv) * S * D;
  const int64_t lo = std::max<int64_t>(0, p0 + t0 - window + 1), hi = p0 + t1 - 1;
  float s[kRowsAtOnce][kKeyBlock];
  float e[kRowsAtOnce][kKeyBlock];
  for (int64_t block = lo / kKeyBlock * kKeyBlock; block <= hi; block += kKeyBlock) {
    const int64_t first = std::max(block, lo), last = std::min(block + kKeyBlock - 1, hi);
    if constexpr (std::is_same_v<T, float>) {
      gather_block(k_head, v_head, S, D, block, first, last, w.kt.data(), w.v.data());
    } else {
      std::fill(w.kt.begin(), w.kt.end(), 0.f);
      std::fill(w.v.begin(), w.v.end(), 0.f);
      for (int64_t p = first; p <= last; ++p) {
        const int64_t j = p - block;
        const T* k = k_head + (p % S) * D;
        const T* v = v_head + (p % S) * D;
        for (int64_t d = 0; d < D; ++d) {
          w.kt[d * kKeyBlock + j] = static_cast<float>(k[d]);
          w.v[j * D + d] = static_cast<float>(v[d]);
        }
      }
    }
    for (int64_t r0 = 0; r0 < R; r0 += kRowsAtOnce) {
      block_scores(w.q.data() + r0 * D, w.kt.data(), D, s);
      bool any = false;
      for (int64_t i = 0; i < kRowsAtOnce; ++i) {
        const int64_t r = r0 + i;
        // this row's position p sees (p - window, p]; padding rows see nothing
        const int64_t p = p0 + t0 + r / group;
        const int64_t j0 = std::max(std::max<int64_t>(0, p - window + 1), first) - block;
        const int64_t j1 = std::min(p, last) - block;
        if (r >= R || j0 > j1) {
          std::fill(e[i], e[i] + kKeyBlock, 0.f);
          continue;
        }
        any = true;
        if (j0 > 0 || j1 < kKeyBlock - 1) {  // a block at an edge of the row's window
          for (int64_t j = 0; j < kKeyBlock; ++j) {
            if (j < j0 || j > j1) s[i][j] = -INFINITY;
          }
        }
        const float factor = block_weights(s[i], w.max[r], w.sum[r], e[i]);
        if (factor != 1.f) scale_row(w.acc.data() + r * D, factor, D);  // rescale what was summed
      }
      if (any) accumulate_block(e, w.v.data(), D, w.acc.data() + r0 * D);
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
