// The Slaney mel filterbank of librosa / HF transformers' audio_utils.mel_filter_bank
// (mel_scale="slaney", norm="slaney"), internal to libvoxtral.
#pragma once

#include <cstddef>
#include <vector>

namespace voxtral::audio {

// Hz <-> mel on the Slaney scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic
// above (27 mel per factor 6.4).
double hertz_to_mel_slaney(double hz);
double mel_to_hertz_slaney(double mel);

// [num_frequency_bins, num_mel_filters], row-major, computed in double step by step as
// HF does (numpy.linspace, triangles, then 2 / bandwidth area normalization). FFT bin k
// sits at linspace(0, sample_rate // 2, num_frequency_bins)[k], as in HF. HF casts the
// result to float32 before use. Requires num_frequency_bins >= 2 and f_min < f_max.
std::vector<double> slaney_mel_filter_bank(size_t num_frequency_bins, size_t num_mel_filters, double f_min,
                                           double f_max, int sample_rate);

}  // namespace voxtral::audio
