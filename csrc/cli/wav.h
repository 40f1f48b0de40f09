// Minimal WAV reading for the command-line program (PCM 16/24/32-bit, IEEE float 32;
// any channel count, averaged to mono). No resampling: libvoxtral takes audio at the
// model's rate; convert other rates first (e.g. `sox in.wav -r 16000 out.wav`).
#pragma once

#include <string>
#include <vector>

#include "voxtral/status.h"

namespace voxtral::cli {

struct Wav {
  int sample_rate = 0;
  std::vector<float> samples;  // mono, [-1, 1]
};

Result<Wav> read_wav(const std::string& path);

}  // namespace voxtral::cli
