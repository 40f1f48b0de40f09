#include "text/bpe.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <queue>

namespace voxtral::text {

bool RankTable::add(std::string_view bytes) {
  if (find(bytes.data(), bytes.size()) != kNoRank) return false;
  const auto rank = static_cast<uint32_t>(size());
  arena_.append(bytes.data(), bytes.size());
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  if (2 * (size() + 1) > slots_.size()) {
    grow();  // re-inserts every rank, this one included
  } else {
    insert(rank, hash(bytes.data(), bytes.size()));
  }
  return true;
}

void RankTable::grow() {
  const size_t capacity = std::max<size_t>(1024, slots_.size() * 2);
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  for (uint32_t r = 0; r < size(); ++r) {
    const std::string_view b = bytes(r);
    insert(r, hash(b.data(), b.size()));
  }
}

void RankTable::insert(uint32_t rank, uint64_t h) {
  size_t i = h & mask_;
  while (slots_[i].rank != kNoRank) i = (i + 1) & mask_;
  slots_[i] = Slot{static_cast<uint32_t>(h >> 32), rank};
}

void RankTable::encode_piece(std::string_view piece, int offset, std::vector<int>& out,
                             std::vector<uint64_t>& scratch) const {
  const char* p = piece.data();
  const size_t n = piece.size();
  if (n == 0) return;
  if (n == 1) {  // ranks 0..255 are the single bytes (checked at load)
    out.push_back(static_cast<int>(static_cast<unsigned char>(p[0])) + offset);
    return;
  }
  const uint32_t whole = find(p, n);
  if (whole != kNoRank) {
    out.push_back(static_cast<int>(whole) + offset);
    return;
  }
  if (n <= 256) {
    merge_small(p, n, offset, out, scratch);
  } else {
    merge_large(p, n, offset, out);
  }
}

// tiktoken's _byte_pair_merge: parts[k] = (rank of the pair starting at part k) << 32 | start;
// the smallest value is the lowest rank, leftmost on a tie. Quadratic; for short pieces.
void RankTable::merge_small(const char* p, size_t n, int offset, std::vector<int>& out,
                            std::vector<uint64_t>& parts) const {
  auto pack = [](uint32_t rank, size_t start) { return (uint64_t{rank} << 32) | start; };
  auto start_of = [&](size_t k) { return static_cast<size_t>(parts[k] & 0xFFFFFFFFu); };
  parts.resize(n + 1);
  for (size_t i = 0; i + 1 < n; ++i) parts[i] = pack(find(p + i, 2), i);
  parts[n - 1] = pack(kNoRank, n - 1);
  parts[n] = pack(kNoRank, n);
  size_t size = n + 1;
  // Rank of the pair that starts at part k: the bytes up to part k + 2.
  auto pair_rank = [&](size_t k) {
    if (k + 2 >= size) return kNoRank;
    const size_t b = start_of(k);
    return find(p + b, start_of(k + 2) - b);
  };
  while (true) {
    uint64_t best = ~uint64_t{0};
    size_t i = 0;
    for (size_t k = 0; k + 1 < size; ++k) {
      if (parts[k] < best) {
        best = parts[k];
        i = k;
      }
    }
    if ((best >> 32) == kNoRank) break;
    std::copy(parts.begin() + static_cast<std::ptrdiff_t>(i + 2), parts.begin() + static_cast<std::ptrdiff_t>(size),
              parts.begin() + static_cast<std::ptrdiff_t>(i + 1));
    --size;
    parts[i] = pack(pair_rank(i), start_of(i));
    if (i > 0) parts[i - 1] = pack(pair_rank(i - 1), start_of(i - 1));
  }
  for (size_t k = 0; k + 1 < size; ++k) {
    const size_t b = start_of(k);
    out.push_back(static_cast<int>(find(p + b, start_of(k + 1) - b)) + offset);
  }
}

// The same merges in O(n log n): a linked list of parts and a heap of (rank, start)
// with stale entries skipped. Parts keep their start when they absorb the next one.
void RankTable::merge_large(const char* p, size_t n, int offset, std::vector<int>& out) const {
  std::vector<uint32_t> next(n + 1), prev(n + 1), rank(n + 1, kNoRank);
  for (size_t k = 0; k <= n; ++k) {
    next[k] = static_cast<uint32_t>(k + 1);
    prev[k] = static_cast<uint32_t>(k == 0 ? 0 : k - 1);
  }
  using Entry = uint64_t;  // rank << 32 | start
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto pair_rank = [&](size_t k) {  // bytes from part k to the end of the part after it
    const size_t j = next[k];
    if (j >= n) return kNoRank;
    return find(p + k, next[j] - k);
  };
  for (size_t k = 0; k + 1 < n; ++k) {
    rank[k] = find(p + k, 2);
    if (rank[k] != kNoRank) heap.push((uint64_t{rank[k]} << 32) | k);
  }
  std::vector<bool> alive(n + 1, true);
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const auto k = static_cast<uint32_t>(e & 0xFFFFFFFFu);
    if (!alive[k] || rank[k] != (e >> 32)) continue;
    const uint32_t j = next[k];  // absorbed into k
    alive[j] = false;
    next[k] = next[j];
    prev[next[j]] = k;
    rank[k] = pair_rank(k);
    if (rank[k] != kNoRank) heap.push((uint64_t{rank[k]} << 32) | k);
    if (k > 0) {
      const uint32_t h = prev[k];
      rank[h] = pair_rank(h);
      if (rank[h] != kNoRank) heap.push((uint64_t{rank[h]} << 32) | h);
    }
  }
  for (size_t k = 0; k < n; k = next[k]) out.push_back(static_cast<int>(find(p + k, next[k] - k)) + offset);
}

}  // namespace voxtral::text
