// Byte-level BPE by rank, as tiktoken does it: a piece that is a token is that token;
// otherwise its bytes start as single-byte parts and the adjacent pair whose
// concatenation has the lowest rank merges (the leftmost on a tie) until no pair is a
// token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace voxtral::text {

// Token bytes -> rank, an open-addressing hash table over one arena of all token bytes.
class RankTable {
 public:
  static constexpr uint32_t kNoRank = UINT32_MAX;

  RankTable() { grow(); }

  // Appends the token of the next rank (size() before the call). False if those bytes
  // already have a rank.
  bool add(std::string_view bytes);
  size_t size() const { return offsets_.size() - 1; }

  uint32_t find(const char* p, size_t n) const {
    const uint64_t h = hash(p, n);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.rank == kNoRank) return kNoRank;
      if (s.tag == tag) {
        const uint32_t begin = offsets_[s.rank], end = offsets_[s.rank + 1];
        if (end - begin == n && std::char_traits<char>::compare(arena_.data() + begin, p, n) == 0) return s.rank;
      }
    }
  }
  std::string_view bytes(uint32_t rank) const {
    return {arena_.data() + offsets_[rank], offsets_[rank + 1] - offsets_[rank]};
  }

  // Appends the ranks of `piece` plus `offset` to `out`. `scratch` is reused between calls.
  void encode_piece(std::string_view piece, int offset, std::vector<int>& out, std::vector<uint64_t>& scratch) const;

 private:
  struct Slot {
    uint32_t tag = 0;
    uint32_t rank = kNoRank;
  };

  static uint64_t hash(const char* p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xFF51AFD7ED558CCDULL);
    while (n >= 8) {
      uint64_t w;
      __builtin_memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
      h ^= h >> 29;
      p += 8;
      n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 27);
  }
  void grow();
  void insert(uint32_t rank, uint64_t h);
  void merge_small(const char* p, size_t n, int offset, std::vector<int>& out, std::vector<uint64_t>& parts) const;
  void merge_large(const char* p, size_t n, int offset, std::vector<int>& out) const;

  std::string arena_;
  std::vector<uint32_t> offsets_{0};
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace voxtral::text
