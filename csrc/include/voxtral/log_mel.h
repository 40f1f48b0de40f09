// The streaming log-mel frontend of Voxtral Realtime: any chunking of the input gives
// the frames that HF's VoxtralRealtimeFeatureExtractor computes on the whole clip.
//
//   voxtral::LogMelConfig c;                // from the program's metadata, never literals
//   c.sample_rate = md.sample_rate;         // 16000
//   c.n_fft = md.window_size;               // 400 (FFT size = window length)
//   c.hop_length = md.hop_length;           // 160
//   c.num_mel_bins = md.num_mel_bins;       // 128
//   c.global_log_mel_max = md.global_log_mel_max;  // 1.5
//   VOXTRAL_ASSIGN_OR_RETURN(voxtral::LogMel mel, voxtral::LogMel::create(c));
//
//   mel.feed(chunk, n);                     // any chunk size, 1 sample included
//   while (mel.frames_ready() >= 8)         // 8 frames = one 80 ms audio token
//     mel.read_frames(8, &buf[0] + col, /*dst_stride=*/buf_frames);  // into [128, buf_frames]
//   mel.finish();                           // end of input: the last frames come out
//
// Per frame j (hop grid of the whole clip, 0-based, x = the samples fed so far):
//   frame   = x[j*hop - n_fft/2 .. j*hop - n_fft/2 + n_fft), reflect-padded at both ends
//             (torch.stft center=True, pad_mode="reflect")
//   power   = |rfft(periodic_hann(n_fft) * frame)|^2               /* [n_fft/2 + 1] */
//   mel     = slaney_filters @ power                               /* [num_mel_bins] */
//   out     = (max(log10(max(mel, 1e-10)), global_log_mel_max - 8) + 4) / 4
// The filters are librosa / HF `mel_filter_bank(norm="slaney", mel_scale="slaney")`.
// The clamp uses the FIXED global_log_mel_max, not Whisper's per-clip maximum.
// A clip of N samples gives (N + 2*(n_fft/2) - n_fft) / hop frames (N / hop for even
// n_fft): torch.stft's 1 + that, minus the last STFT frame, which HF drops.
//
// Frame j is emitted by feed() as soon as it is final: once samples up to
// j*hop - n_fft/2 + n_fft exist and the clip is long enough that j is not the dropped
// frame; the frames whose window reaches past the end come out at finish(), using the
// right reflect padding. Only the STFT overlap is kept between calls, so memory stays
// bounded on endless streams (frames_ready() frames wait for read_frames()).
// Clips shorter than n_fft/2 + 1 samples, which torch.stft refuses to reflect-pad, are
// padded the way numpy.pad(mode="reflect") does (repeated reflection).
//
// Numerics: the STFT, filterbank and log run in double, the output is float32; HF runs
// the STFT in float32, which differs from this by < 1e-4 (tests/python/test_log_mel.py).
//
// A LogMel is one stream's state: movable, not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "voxtral/export.h"
#include "voxtral/status.h"

namespace voxtral {

struct VOXTRAL_API LogMelConfig {
  // From the program's metadata (sample_rate, window_size, hop_length, num_mel_bins,
  // global_log_mel_max): no default is a model's value.
  int sample_rate = 0;            // Hz: 16000
  int n_fft = 0;                  // FFT size = Hann window length, samples: 400
  int hop_length = 0;             // samples between frames, 1..n_fft: 160
  int num_mel_bins = 0;           // 128
  float global_log_mel_max = 0;   // log10 ceiling of the clamp: 1.5 (floor = it - 8)
  // Filterbank range, Hz: 0 <= f_min < f_max <= sample_rate / 2.
  double f_min = 0.0;
  double f_max = 0.0;             // 0 = sample_rate / 2 (what HF uses: 8000 at 16 kHz)

  // InvalidArgument naming the first bad field.
  Status validate() const;
};

class VOXTRAL_API LogMel {
 public:
  // Validates `config` and precomputes the window, FFT plan and filterbank.
  static Result<LogMel> create(const LogMelConfig& config);

  LogMel(LogMel&&) noexcept;
  LogMel& operator=(LogMel&&) noexcept;
  ~LogMel();

  // The config, f_max resolved to its value in Hz.
  const LogMelConfig& config() const;

  // Appends `n` samples and computes every frame they make final. InvalidArgument (and
  // nothing consumed) if a sample is NaN or infinite; FailedPrecondition after finish().
  Status feed(const float* samples, size_t n);

  // End of input: computes the remaining frames with the right reflect padding. A second
  // call does nothing. FailedPrecondition only on a moved-from object.
  Status finish();
  bool finished() const;

  // Frames computed and not yet read.
  size_t frames_ready() const;

  // Moves the oldest `frames` ready frames to `dst`, mel-major: bin m of the f-th frame
  // goes to dst[m * dst_stride + f] (dst_stride 0 = `frames`), so a reader fills
  // columns of an encoder input [num_mel_bins, T] by passing dst_stride = T.
  // OutOfRange if fewer are ready; InvalidArgument for a null dst or dst_stride < frames.
  Status read_frames(size_t frames, float* dst, size_t dst_stride = 0);

  // Back to the state after create(): a new clip, frame 0 at its first sample.
  void reset();

  uint64_t samples_fed() const;      // since create() / reset()
  uint64_t frames_produced() const;  // computed so far, read or not

  // Frames a whole clip of `num_samples` samples gives (what finish() ends at).
  uint64_t num_frames(uint64_t num_samples) const;

 private:
  struct Impl;
  explicit LogMel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace voxtral
