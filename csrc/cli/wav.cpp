#include "cli/wav.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

namespace voxtral::cli {

namespace {

uint32_t u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// WAV is little-endian whatever the host is: every number is written byte by byte.
void put_u32(unsigned char* p, uint32_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
  p[2] = static_cast<unsigned char>(v >> 16);
  p[3] = static_cast<unsigned char>(v >> 24);
}
void put_u16(unsigned char* p, uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// The header WavWriter writes: RIFF, an 18-byte fmt chunk (IEEE float needs the cbSize
// field), a fact chunk (the sample count, which the format requires of every non-PCM file),
// then data. Offsets of the three sizes close() patches:
constexpr long kRiffSizeAt = 4;
constexpr long kFactSamplesAt = 46;
constexpr long kDataSizeAt = 54;
constexpr uint32_t kHeaderBytes = 58;
// The RIFF size counts every byte after its own field: the header's 50 and the data.
constexpr uint64_t kMaxDataBytes = 0xFFFFFFFFull - (kHeaderBytes - 8);

}  // namespace

Result<Wav> read_wav(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kNotFound, "cannot open audio file '" + path + "'");
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) { return Status(ErrorCode::kInvalidArgument, "'" + path + "': " + why); };
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 || std::memcmp(b.data() + 8, "WAVE", 4) != 0) {
    return bad("not a WAV file (convert it, e.g. with sox or ffmpeg)");
  }
  int format = 0, channels = 0, bits = 0;
  Wav wav;
  const unsigned char* data = nullptr;
  size_t data_size = 0;
  for (size_t pos = 12; pos + 8 <= b.size();) {
    const uint32_t size = u32(&b[pos + 4]);
    const size_t body = pos + 8;
    if (size > b.size() - body) return bad("truncated chunk");
    if (std::memcmp(&b[pos], "fmt ", 4) == 0 && size >= 16) {
      format = u16(&b[body]);
      channels = u16(&b[body + 2]);
      wav.sample_rate = static_cast<int>(u32(&b[body + 4]));
      bits = u16(&b[body + 14]);
      if (format == 0xFFFE && size >= 26) format = u16(&b[body + 24]);  // WAVE_FORMAT_EXTENSIBLE
    } else if (std::memcmp(&b[pos], "data", 4) == 0) {
      data = &b[body];
      data_size = size;
    }
    pos = body + size + (size & 1);
  }
  if (channels <= 0 || wav.sample_rate <= 0) return bad("no valid fmt chunk");
  if (data == nullptr) return bad("no data chunk");
  const bool pcm = format == 1 && (bits == 16 || bits == 24 || bits == 32);
  const bool flt = format == 3 && bits == 32;
  if (!pcm && !flt) return bad("unsupported sample format (use PCM 16/24/32-bit or float32)");
  const size_t bytes = static_cast<size_t>(bits / 8), frame = bytes * static_cast<size_t>(channels);
  const size_t frames = data_size / frame;
  wav.samples.resize(frames);
  for (size_t f = 0; f < frames; ++f) {
    double sum = 0;
    for (int c = 0; c < channels; ++c) {
      const unsigned char* p = data + f * frame + static_cast<size_t>(c) * bytes;
      if (flt) {
        float v;
        std::memcpy(&v, p, 4);
        sum += v;
      } else if (bits == 16) {
        sum += static_cast<int16_t>(u16(p)) / 32768.0;
      } else if (bits == 24) {
        int32_t v = static_cast<int32_t>((p[0] << 8) | (p[1] << 16) | (static_cast<uint32_t>(p[2]) << 24)) >> 8;
        sum += v / 8388608.0;
      } else {
        sum += static_cast<int32_t>(u32(p)) / 2147483648.0;
      }
    }
    wav.samples[f] = static_cast<float>(sum / channels);
  }
  return wav;
}

WavWriter::~WavWriter() {
  if (is_open()) (void)close();  // best effort: a destructor has no one to report to
}

Status WavWriter::io_error(const std::string& what) const {
  return Status(ErrorCode::kIoError, what + " '" + path_ + "': " + std::strerror(errno));
}

Status WavWriter::open(const std::string& path, int sample_rate) {
  if (is_open()) return Status(ErrorCode::kFailedPrecondition, "WavWriter::open: '" + path_ + "' is still open");
  if (sample_rate <= 0) {
    return Status(ErrorCode::kInvalidArgument, "WavWriter::open: sample rate " + std::to_string(sample_rate));
  }
  path_ = path;
  samples_ = 0;
  errno = 0;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) return io_error("cannot create");
  unsigned char h[kHeaderBytes] = {};
  std::memcpy(h, "RIFF", 4);
  put_u32(h + kRiffSizeAt, kHeaderBytes - 8);  // no samples yet; close() writes the real sizes
  std::memcpy(h + 8, "WAVE", 4);
  std::memcpy(h + 12, "fmt ", 4);
  put_u32(h + 16, 18);
  put_u16(h + 20, 3);  // WAVE_FORMAT_IEEE_FLOAT
  put_u16(h + 22, 1);  // mono
  put_u32(h + 24, static_cast<uint32_t>(sample_rate));
  put_u32(h + 28, static_cast<uint32_t>(sample_rate) * 4u);  // bytes per second
  put_u16(h + 32, 4);   // bytes per sample frame
  put_u16(h + 34, 32);  // bits per sample
  put_u16(h + 36, 0);   // cbSize: no extension
  std::memcpy(h + 38, "fact", 4);
  put_u32(h + 42, 4);
  put_u32(h + kFactSamplesAt, 0);
  std::memcpy(h + 50, "data", 4);
  put_u32(h + kDataSizeAt, 0);
  if (std::fwrite(h, 1, sizeof h, file_) != sizeof h || std::fflush(file_) != 0) {
    Status s = io_error("cannot write");
    std::fclose(file_);
    file_ = nullptr;
    return s;
  }
  return Status::Ok();
}

Status WavWriter::append(const float* samples, size_t n) {
  if (!is_open()) return Status(ErrorCode::kFailedPrecondition, "WavWriter::append: no file is open");
  if (n == 0) return Status::Ok();
  if (n > (kMaxDataBytes / 4) - samples_) {
    return Status(ErrorCode::kOutOfRange, "'" + path_ + "': more than a WAV file's 4 GiB of samples");
  }
  buffer_.resize(n * 4);
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &samples[i], 4);
    put_u32(&buffer_[i * 4], bits);
  }
  errno = 0;
  // Flushed per call: the file holds every sample appended so far, for a reader that follows
  // it or for the audio made before a later failure.
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size() || std::fflush(file_) != 0) {
    return io_error("cannot write");
  }
  samples_ += n;
  return Status::Ok();
}

Status WavWriter::close() {
  if (!is_open()) return Status(ErrorCode::kFailedPrecondition, "WavWriter::close: no file is open");
  const uint64_t data_bytes = samples_ * 4;  // at most kMaxDataBytes (append's check)
  unsigned char v[4];
  Status status = Status::Ok();
  errno = 0;
  for (auto [at, value] : {std::pair<long, uint32_t>{kRiffSizeAt, static_cast<uint32_t>(kHeaderBytes - 8 + data_bytes)},
                           {kFactSamplesAt, static_cast<uint32_t>(samples_)},
                           {kDataSizeAt, static_cast<uint32_t>(data_bytes)}}) {
    put_u32(v, value);
    if (std::fseek(file_, at, SEEK_SET) != 0 || std::fwrite(v, 1, 4, file_) != 4) {
      status = io_error("cannot write the sizes of");
      break;
    }
  }
  // fclose flushes: its failure (a full disk, say) is a failure to write the file.
  if (std::fclose(file_) != 0 && status.ok()) status = io_error("cannot close");
  file_ = nullptr;
  return status;
}

}  // namespace voxtral::cli
