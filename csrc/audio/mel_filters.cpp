#include "audio/mel_filters.h"

#include <algorithm>
#include <cmath>

namespace voxtral::audio {

namespace {
constexpr double kMinLogHertz = 1000.0;  // where the Slaney scale turns logarithmic
constexpr double kMinLogMel = 15.0;      // its mel value there

// numpy.linspace(start, stop, num): start + i * step, the last one exactly stop.
std::vector<double> linspace(double start, double stop, size_t num) {
  std::vector<double> y(num);
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (size_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}
}  // namespace

double hertz_to_mel_slaney(double hz) {
  if (hz >= kMinLogHertz) return kMinLogMel + std::log(hz / kMinLogHertz) * (27.0 / std::log(6.4));
  return 3.0 * hz / 200.0;
}

double mel_to_hertz_slaney(double mel) {
  if (mel >= kMinLogMel) return kMinLogHertz * std::exp(std::log(6.4) / 27.0 * (mel - kMinLogMel));
  return 200.0 * mel / 3.0;
}

std::vector<double> slaney_mel_filter_bank(size_t num_frequency_bins, size_t num_mel_filters, double f_min,
                                           double f_max, int sample_rate) {
  const size_t nb = num_frequency_bins, nm = num_mel_filters;
  std::vector<double> filter_freqs = linspace(hertz_to_mel_slaney(f_min), hertz_to_mel_slaney(f_max), nm + 2);
  for (double& f : filter_freqs) f = mel_to_hertz_slaney(f);
  const std::vector<double> fft_freqs = linspace(0.0, static_cast<double>(sample_rate / 2), nb);

  std::vector<double> bank(nb * nm);
  for (size_t m = 0; m < nm; ++m) {
    const double lower = filter_freqs[m], center = filter_freqs[m + 1], upper = filter_freqs[m + 2];
    const double enorm = 2.0 / (upper - lower);
    for (size_t k = 0; k < nb; ++k) {
      const double down = -(lower - fft_freqs[k]) / (center - lower);
      const double up = (upper - fft_freqs[k]) / (upper - center);
      bank[k * nm + m] = std::max(0.0, std::min(down, up)) * enorm;
    }
  }
  return bank;
}

}  // namespace voxtral::audio
