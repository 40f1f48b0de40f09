#include "text/unicode.h"

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace voxtral::text {

namespace {

#include "text/unicode_data.inc"

// Identical 256-code-point blocks are stored once (a few hundred of the 4352 differ).
struct Storage {
  std::vector<uint16_t> block_of;
  std::vector<uint8_t> blocks;
  CategoryTable table{};

  Storage() {
    std::string all(0x110000, '\0');
    for (size_t i = 0; i < kNumRuns; ++i) {
      const uint32_t end = i + 1 < kNumRuns ? kRunStarts[i + 1] : 0x110000;
      for (uint32_t cp = kRunStarts[i]; cp < end; ++cp) all[cp] = static_cast<char>(kRunCategories[i]);
    }
    std::unordered_map<std::string, uint16_t> seen;
    block_of.resize(0x1100);
    for (uint32_t b = 0; b < 0x1100; ++b) {
      std::string block = all.substr(size_t{b} * 256, 256);
      auto it = seen.find(block);
      if (it == seen.end()) {
        it = seen.emplace(block, static_cast<uint16_t>(blocks.size() / 256)).first;
        blocks.insert(blocks.end(), block.begin(), block.end());
      }
      block_of[b] = it->second;
    }
    table = CategoryTable{block_of.data(), blocks.data()};
  }
};

}  // namespace

const CategoryTable& category_table() {
  static const Storage storage;  // thread-safe initialization
  return storage.table;
}

const char* unicode_version() { return VOXTRAL_UNICODE_VERSION; }

}  // namespace voxtral::text
