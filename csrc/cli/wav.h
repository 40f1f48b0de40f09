// Minimal WAV reading and writing for the command-line programs.
//
// Reading: PCM 16/24/32-bit, IEEE float 32; any channel count, averaged to mono. No
// resampling: libvoxtral takes audio at the model's rate; convert other rates first (e.g.
// `sox in.wav -r 16000 out.wav`).
//
// Writing: mono IEEE float 32 (format tag 3), so the samples on disk are exactly the ones the
// runtime produced. The samples are streamed to the file as they come; close() patches the
// RIFF sizes, which are not known until the end.
//
//   voxtral::cli::WavWriter out;
//   if (auto s = out.open("out.wav", 24000); !s.ok()) ...
//   out.append(chunk.data(), chunk.size());  // as often as needed
//   if (auto s = out.close(); !s.ok()) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "voxtral/status.h"

namespace voxtral::cli {

struct Wav {
  int sample_rate = 0;
  std::vector<float> samples;  // mono, [-1, 1]
};

Result<Wav> read_wav(const std::string& path);

class WavWriter {
 public:
  WavWriter() = default;
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;
  // A writer dropped while open closes its file as close() would (errors then go unreported):
  // what was appended stays a valid WAV file.
  ~WavWriter();

  // Creates (or truncates) `path` and writes a header for mono float32 at `sample_rate`.
  // IoError when the file cannot be created; FailedPrecondition when already open.
  Status open(const std::string& path, int sample_rate);
  // Appends `n` samples. IoError on a write failure; OutOfRange when the data would pass the
  // 4 GiB that WAV's 32-bit sizes can describe; FailedPrecondition when not open.
  Status append(const float* samples, size_t n);
  // Patches the sizes and closes the file. FailedPrecondition when not open.
  Status close();

  bool is_open() const { return file_ != nullptr; }
  uint64_t samples_written() const { return samples_; }
  const std::string& path() const { return path_; }

 private:
  Status io_error(const std::string& what) const;

  std::FILE* file_ = nullptr;
  std::string path_;
  uint64_t samples_ = 0;
  std::vector<unsigned char> buffer_;  // little-endian bytes of one append
};

}  // namespace voxtral::cli
