#include "backends/aoti/zip_directory.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>

namespace voxtral::backend {

namespace {

// Little-endian fields of the records (APPNOTE.TXT 4.3.12-4.3.16).
uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kEndOfDirectory = 0x06054b50;     // EOCD, 22 bytes + comment
constexpr uint32_t kZip64Locator = 0x07064b50;       // 20 bytes, just before the EOCD
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;     // 46 bytes + name + extra + comment

}  // namespace

Result<std::vector<std::string>> zip_entry_names(const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidProgram, "'" + path + "' is not a readable AOTInductor package: " + why);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kNotFound, "cannot open '" + path + "'");
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  auto read_at = [&](uint64_t offset, size_t n, std::vector<unsigned char>* out) {
    if (offset > size || n > size - offset) return false;
    out->resize(n);
    in.seekg(static_cast<std::streamoff>(offset));
    return static_cast<bool>(in.read(reinterpret_cast<char*>(out->data()), static_cast<std::streamsize>(n)));
  };

  // The end-of-directory record: the last 22 bytes, or earlier by an archive comment (< 64 KiB).
  const uint64_t tail_size = std::min<uint64_t>(size, 22 + 65535);
  std::vector<unsigned char> tail;
  if (size < 22 || !read_at(size - tail_size, tail_size, &tail)) return bad("too short for a zip archive");
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (le(&tail[i], 4) == kEndOfDirectory) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return bad("no zip end-of-directory record (truncated?)");
  uint64_t entries = le(&tail[eocd + 10], 2);
  uint64_t dir_size = le(&tail[eocd + 12], 4);
  uint64_t dir_offset = le(&tail[eocd + 16], 4);
  // zip64 (archives over 4 GiB, or over 65535 entries): the locator just before the EOCD
  // points at the zip64 end-of-directory record, which holds the 64-bit fields.
  const uint64_t eocd_at = size - tail_size + static_cast<uint64_t>(eocd);
  std::vector<unsigned char> rec;
  if (eocd_at >= 20 && read_at(eocd_at - 20, 20, &rec) && le(rec.data(), 4) == kZip64Locator) {
    const uint64_t at = le(&rec[8], 8);
    if (!read_at(at, 56, &rec) || le(rec.data(), 4) != kZip64EndOfDirectory) return bad("a broken zip64 record");
    entries = le(&rec[32], 8);
    dir_size = le(&rec[40], 8);
    dir_offset = le(&rec[48], 8);
  }
  std::vector<unsigned char> dir;
  if (!read_at(dir_offset, dir_size, &dir)) return bad("its central directory lies outside the file");
  std::vector<std::string> names;
  size_t p = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (p + 46 > dir.size() || le(&dir[p], 4) != kDirectoryEntry) return bad("a broken central directory");
    const size_t name_len = le(&dir[p + 28], 2), extra_len = le(&dir[p + 30], 2), comment_len = le(&dir[p + 32], 2);
    if (p + 46 + name_len > dir.size()) return bad("a broken central directory");
    names.emplace_back(reinterpret_cast<const char*>(&dir[p + 46]), name_len);
    p += 46 + name_len + extra_len + comment_len;
  }
  return names;
}

}  // namespace voxtral::backend
