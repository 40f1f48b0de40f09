#include "cli/wav.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

namespace voxtral::cli {

namespace {

uint32_t u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

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

}  // namespace voxtral::cli
