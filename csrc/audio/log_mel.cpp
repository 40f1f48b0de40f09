// Streaming log-mel (voxtral/log_mel.h). The samples of the current clip live in one
// buffer whose front is dropped once no frame still to come reads it.
#include "voxtral/log_mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "audio/fft.h"
#include "audio/mel_filters.h"

namespace voxtral {

namespace {
constexpr double kTwoPi = 6.283185307179586476925286766559;
// The normalization of Whisper-style log-mel features (HF / mistral_common): the log10
// floor of the power, the dynamic range below the ceiling, then (x + 4) / 4.
constexpr double kMinPower = 1e-10;
constexpr float kDynamicRange = 8.0f;
constexpr double kOffset = 4.0, kScale = 4.0;
// Guards against absurd allocations, far above any speech frontend.
constexpr int kMaxFft = 1 << 20;
constexpr int kMaxMelBins = 1 << 14;

Status invalid(const std::string& what) { return Status(ErrorCode::kInvalidArgument, "LogMelConfig: " + what); }
Status moved_from() { return Status(ErrorCode::kFailedPrecondition, "LogMel: use of a moved-from object"); }

// numpy.pad(mode="reflect") index of position g of a clip of n >= 1 samples.
uint64_t reflect(int64_t g, uint64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * static_cast<int64_t>(n - 1);
  int64_t m = g % period;
  if (m < 0) m += period;
  if (m >= static_cast<int64_t>(n)) m = period - m;
  return static_cast<uint64_t>(m);
}
}  // namespace

Status LogMelConfig::validate() const {
  if (sample_rate <= 0) return invalid("sample_rate must be > 0, got " + std::to_string(sample_rate));
  if (n_fft < 2 || n_fft > kMaxFft) {
    return invalid("n_fft must be in [2, " + std::to_string(kMaxFft) + "], got " + std::to_string(n_fft));
  }
  if (hop_length <= 0 || hop_length > n_fft) {
    return invalid("hop_length must be in [1, n_fft = " + std::to_string(n_fft) + "], got " + std::to_string(hop_length));
  }
  if (num_mel_bins <= 0 || num_mel_bins > kMaxMelBins) {
    return invalid("num_mel_bins must be in [1, " + std::to_string(kMaxMelBins) + "], got " + std::to_string(num_mel_bins));
  }
  if (!std::isfinite(global_log_mel_max)) return invalid("global_log_mel_max must be finite");
  const double nyquist = sample_rate / 2.0;
  const double top = f_max == 0.0 ? nyquist : f_max;
  if (!std::isfinite(f_min) || !std::isfinite(f_max) || f_min < 0.0 || top <= f_min || top > nyquist) {
    return invalid("need 0 <= f_min < f_max <= sample_rate / 2 = " + std::to_string(nyquist) + " Hz, got f_min " +
                   std::to_string(f_min) + ", f_max " + std::to_string(f_max));
  }
  return Status::Ok();
}

struct LogMel::Impl {
  LogMelConfig config;
  size_t n_fft = 0, hop = 0, half = 0, n_mels = 0, n_bins = 0;
  double floor_log = 0;  // global_log_mel_max - 8, in float32 as HF computes it

  std::vector<double> window;  // periodic Hann [n_fft]
  audio::RealFft fft;
  // Filter m is weights[offset[m] .. offset[m] + length[m]) over bins first[m]...
  std::vector<size_t> first, length, offset;
  std::vector<double> weights;

  std::vector<double> frame;                   // [n_fft] windowed samples
  std::vector<std::complex<double>> spectrum;  // [n_bins]

  std::vector<float> samples;  // the clip from sample index `start`
  uint64_t start = 0;
  uint64_t fed = 0;         // samples fed: the clip length so far
  uint64_t next_frame = 0;  // frames computed
  bool done = false;        // finish() called

  std::vector<float> ready;  // [frames, n_mels], frames computed and not read from ready_head on
  size_t ready_head = 0;

  explicit Impl(const LogMelConfig& c) : config(c), fft(static_cast<size_t>(c.n_fft)) {
    n_fft = static_cast<size_t>(c.n_fft);
    hop = static_cast<size_t>(c.hop_length);
    half = n_fft / 2;
    n_mels = static_cast<size_t>(c.num_mel_bins);
    n_bins = n_fft / 2 + 1;
    floor_log = static_cast<double>(c.global_log_mel_max - kDynamicRange);

    window.resize(n_fft);
    for (size_t i = 0; i < n_fft; ++i) {
      window[i] = 0.5 - 0.5 * std::cos(kTwoPi * static_cast<double>(i) / static_cast<double>(n_fft));
    }
    // HF applies the filters in float32: keep the float32 values, sparsely.
    const std::vector<double> bank =
        audio::slaney_mel_filter_bank(n_bins, n_mels, c.f_min, c.f_max, c.sample_rate);  // [n_bins, n_mels]
    first.assign(n_mels, 0);
    length.assign(n_mels, 0);
    offset.assign(n_mels, 0);
    for (size_t m = 0; m < n_mels; ++m) {
      size_t lo = n_bins, hi = 0;
      for (size_t k = 0; k < n_bins; ++k) {
        if (static_cast<float>(bank[k * n_mels + m]) != 0.0f) {
          lo = std::min(lo, k);
          hi = k + 1;
        }
      }
      offset[m] = weights.size();
      if (hi <= lo) continue;  // an empty filter (too many bins for the FFT): always the floor
      first[m] = lo;
      length[m] = hi - lo;
      for (size_t k = lo; k < hi; ++k) weights.push_back(static_cast<float>(bank[k * n_mels + m]));
    }
    frame.resize(n_fft);
    spectrum.resize(n_bins);
  }

  // Frames of a whole clip of n samples: torch.stft's 1 + (n + 2 half - n_fft) / hop,
  // minus the last one.
  uint64_t frames_for(uint64_t n) const { return n + 2 * half < n_fft ? 0 : (n + 2 * half - n_fft) / hop; }

  // Frame j is final once its window lies in the samples fed (the left reflection reads
  // at most sample `half`) and the clip is already long enough to keep it.
  bool final_now(uint64_t j) const {
    return fed > half && j < frames_for(fed) && j * hop + (n_fft - half) <= fed;
  }

  void compute_frame(uint64_t j) {
    const int64_t s = static_cast<int64_t>(j * hop) - static_cast<int64_t>(half);
    if (s >= static_cast<int64_t>(start) && static_cast<uint64_t>(s) + n_fft <= fed) {
      const float* x = samples.data() + (static_cast<uint64_t>(s) - start);
      for (size_t i = 0; i < n_fft; ++i) frame[i] = window[i] * static_cast<double>(x[i]);
    } else {  // reflect padding; the indices read never precede `start` (see drop_consumed)
      for (size_t i = 0; i < n_fft; ++i) {
        const uint64_t at = reflect(s + static_cast<int64_t>(i), fed);
        frame[i] = window[i] * static_cast<double>(samples[at - start]);
      }
    }
    fft.forward(frame.data(), spectrum.data());
    for (size_t k = 0; k < n_bins; ++k) frame[k] = std::norm(spectrum[k]);  // power, reusing `frame`

    const size_t at = ready.size();
    ready.resize(at + n_mels);
    float* out = ready.data() + at;
    for (size_t m = 0; m < n_mels; ++m) {
      const double* w = weights.data() + offset[m];
      const double* p = frame.data() + first[m];
      double mel = 0;
      for (size_t i = 0; i < length[m]; ++i) mel += w[i] * p[i];
      const double log_mel = std::max(std::log10(std::max(mel, kMinPower)), floor_log);
      out[m] = static_cast<float>((log_mel + kOffset) / kScale);
    }
    ++next_frame;
  }

  // Frames from next_frame on read samples >= next_frame * hop - half, including the
  // reflected ones at the end of the clip (the last kept frame ends before the end's
  // mirror image reaches back past its own start); the left reflection only happens
  // while that bound is <= 0.
  void drop_consumed() {
    const uint64_t need = next_frame * hop > half ? next_frame * hop - half : 0;
    const uint64_t drop = std::min<uint64_t>(need > start ? need - start : 0, samples.size());
    if (drop > 0 && 2 * drop >= samples.size()) {  // amortized O(1) per sample
      samples.erase(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(drop));
      start += drop;
    }
  }

  void clear() {
    samples.clear();
    start = fed = next_frame = 0;
    done = false;
    ready.clear();
    ready_head = 0;
  }
};

LogMel::LogMel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LogMel::LogMel(LogMel&&) noexcept = default;
LogMel& LogMel::operator=(LogMel&&) noexcept = default;
LogMel::~LogMel() = default;

Result<LogMel> LogMel::create(const LogMelConfig& config) {
  VOXTRAL_RETURN_IF_ERROR(config.validate());
  LogMelConfig resolved = config;
  if (resolved.f_max == 0.0) resolved.f_max = config.sample_rate / 2.0;
  return LogMel(std::make_unique<Impl>(resolved));
}

const LogMelConfig& LogMel::config() const {
  static const LogMelConfig kEmpty{};
  return impl_ ? impl_->config : kEmpty;
}

Status LogMel::feed(const float* samples, size_t n) {
  if (!impl_) return moved_from();
  Impl& s = *impl_;
  if (s.done) return Status(ErrorCode::kFailedPrecondition, "LogMel::feed() after finish(): reset() for a new clip");
  if (n == 0) return Status::Ok();
  if (samples == nullptr) return Status(ErrorCode::kInvalidArgument, "LogMel::feed(): null samples");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(samples[i])) {
      return Status(ErrorCode::kInvalidArgument,
                    "LogMel::feed(): sample " + std::to_string(i) + " is not finite (NaN or inf)");
    }
  }
  s.samples.insert(s.samples.end(), samples, samples + n);
  s.fed += n;
  while (s.final_now(s.next_frame)) s.compute_frame(s.next_frame);
  s.drop_consumed();
  return Status::Ok();
}

Status LogMel::finish() {
  if (!impl_) return moved_from();
  Impl& s = *impl_;
  if (s.done) return Status::Ok();
  s.done = true;
  const uint64_t total = s.frames_for(s.fed);
  while (s.next_frame < total) s.compute_frame(s.next_frame);
  s.samples.clear();
  s.samples.shrink_to_fit();
  s.start = s.fed;
  return Status::Ok();
}

bool LogMel::finished() const { return impl_ && impl_->done; }

size_t LogMel::frames_ready() const {
  return impl_ ? impl_->ready.size() / impl_->n_mels - impl_->ready_head : 0;
}

Status LogMel::read_frames(size_t frames, float* dst, size_t dst_stride) {
  if (!impl_) return moved_from();
  Impl& s = *impl_;
  if (dst_stride == 0) dst_stride = frames;
  if (frames == 0) return Status::Ok();
  if (dst == nullptr) return Status(ErrorCode::kInvalidArgument, "LogMel::read_frames(): null dst");
  if (dst_stride < frames) {
    return Status(ErrorCode::kInvalidArgument, "LogMel::read_frames(): dst_stride " + std::to_string(dst_stride) +
                                                   " < frames " + std::to_string(frames));
  }
  const size_t available = frames_ready();
  if (frames > available) {
    return Status(ErrorCode::kOutOfRange, "LogMel::read_frames(): " + std::to_string(frames) + " frames asked, " +
                                              std::to_string(available) + " ready");
  }
  const float* src = s.ready.data() + s.ready_head * s.n_mels;  // [frames, n_mels]
  for (size_t m = 0; m < s.n_mels; ++m) {
    float* row = dst + m * dst_stride;
    for (size_t f = 0; f < frames; ++f) row[f] = src[f * s.n_mels + m];
  }
  s.ready_head += frames;
  const size_t total = s.ready.size() / s.n_mels;
  if (s.ready_head == total) {
    s.ready.clear();
    s.ready_head = 0;
  } else if (2 * s.ready_head >= total) {
    s.ready.erase(s.ready.begin(), s.ready.begin() + static_cast<std::ptrdiff_t>(s.ready_head * s.n_mels));
    s.ready_head = 0;
  }
  return Status::Ok();
}

void LogMel::reset() {
  if (impl_) impl_->clear();
}

uint64_t LogMel::samples_fed() const { return impl_ ? impl_->fed : 0; }
uint64_t LogMel::frames_produced() const { return impl_ ? impl_->next_frame : 0; }
uint64_t LogMel::num_frames(uint64_t num_samples) const { return impl_ ? impl_->frames_for(num_samples) : 0; }

}  // namespace voxtral
