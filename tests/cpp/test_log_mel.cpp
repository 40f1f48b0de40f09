// The streaming log-mel frontend: the mixed-radix FFT against a direct DFT, the Slaney
// filterbank against values of HF's mel_filter_bank, chunked == whole-clip frames, frame
// counts, silence, errors. tests/python/test_log_mel.py compares with HF's extractor.
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <random>
#include <vector>

#include "audio/fft.h"
#include "audio/mel_filters.h"
#include "check.h"
#include "voxtral/log_mel.h"

using voxtral::ErrorCode;
using voxtral::LogMel;
using voxtral::LogMelConfig;

namespace {

// The values of VoxtralRealtimeFeatureExtractor's defaults (test data, not runtime constants).
LogMelConfig realtime_config() {
  LogMelConfig c;
  c.sample_rate = 16000;
  c.n_fft = 400;
  c.hop_length = 160;
  c.num_mel_bins = 128;
  c.global_log_mel_max = 1.5f;
  return c;
}

LogMel make(const LogMelConfig& c = realtime_config()) {
  auto r = LogMel::create(c);
  CHECK(r.ok());
  return std::move(r).value();
}

// All frames, [n_mels, frames].
std::vector<float> read_all(LogMel& mel) {
  const size_t n = mel.frames_ready();
  std::vector<float> out(static_cast<size_t>(mel.config().num_mel_bins) * n);
  CHECK(mel.read_frames(n, out.data()).ok());
  return out;
}

// Feeds `x` in chunks of the given sizes (cycled), reading frames as they come;
// returns [n_mels, frames] after finish().
std::vector<std::vector<float>> run_chunked(const LogMelConfig& c, const std::vector<float>& x,
                                            const std::vector<size_t>& sizes) {
  LogMel mel = make(c);
  std::vector<std::vector<float>> frames;  // frame-major for easy comparison
  auto drain = [&] {
    const size_t n = mel.frames_ready();
    std::vector<float> buf = read_all(mel);
    for (size_t f = 0; f < n; ++f) {
      std::vector<float> col(static_cast<size_t>(c.num_mel_bins));
      for (size_t m = 0; m < col.size(); ++m) col[m] = buf[m * n + f];
      frames.push_back(col);
    }
  };
  size_t at = 0, i = 0;
  while (at < x.size()) {
    const size_t k = std::min(sizes[i++ % sizes.size()], x.size() - at);
    CHECK(mel.feed(x.data() + at, k).ok());
    at += k;
    drain();
  }
  CHECK(mel.finish().ok());
  drain();
  CHECK_EQ(mel.frames_produced(), frames.size());
  return frames;
}

std::vector<float> tone(size_t n, double hz, double amp, int sr) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(amp * std::sin(2 * M_PI * hz * static_cast<double>(i) / sr));
  return x;
}

void test_fft() {
  std::mt19937 rng(1);
  std::normal_distribution<double> g;
  for (size_t n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 16, 25, 49, 77, 97, 121, 128, 200, 400, 401, 1024}) {
    std::vector<double> x(n);
    for (double& v : x) v = g(rng);
    std::vector<std::complex<double>> got(n / 2 + 1);
    voxtral::audio::RealFft fft(n);
    CHECK_EQ(fft.num_bins(), n / 2 + 1);
    fft.forward(x.data(), got.data());
    double err = 0, scale = 0;
    for (size_t k = 0; k <= n / 2; ++k) {
      std::complex<long double> ref = 0;
      for (size_t t = 0; t < n; ++t) {
        const long double a = -2.0L * 3.14159265358979323846264338327950288L * static_cast<long double>((k * t) % n) / n;
        ref += std::complex<long double>(std::cos(a), std::sin(a)) * static_cast<long double>(x[t]);
      }
      err = std::max(err, static_cast<double>(std::abs(std::complex<long double>(got[k]) - ref)));
      scale = std::max(scale, static_cast<double>(std::abs(ref)));
    }
    if (!(err <= 1e-12 * std::max(1.0, scale))) std::fprintf(stderr, "fft n=%zu err %g\n", n, err);
    CHECK(err <= 1e-12 * std::max(1.0, scale));

    // The complex FFT on complex input too.
    std::vector<std::complex<double>> z(n), out(n);
    for (auto& v : z) v = {g(rng), g(rng)};
    voxtral::audio::ComplexFft cfft(n);
    cfft.forward(z.data(), out.data());
    double cerr = 0;
    for (size_t k = 0; k < n; ++k) {
      std::complex<long double> ref = 0;
      for (size_t t = 0; t < n; ++t) {
        const long double a = -2.0L * 3.14159265358979323846264338327950288L * static_cast<long double>((k * t) % n) / n;
        ref += std::complex<long double>(std::cos(a), std::sin(a)) * std::complex<long double>(z[t]);
      }
      cerr = std::max(cerr, static_cast<double>(std::abs(std::complex<long double>(out[k]) - ref)));
    }
    CHECK(cerr <= 1e-12 * std::max<double>(1.0, static_cast<double>(n)));
  }
}

void test_mel_filters() {
  namespace a = voxtral::audio;
  CHECK_NEAR(a::hertz_to_mel_slaney(1000.0), 15.0, 1e-12);
  CHECK_NEAR(a::hertz_to_mel_slaney(500.0), 7.5, 1e-12);
  for (double hz : {0.0, 123.0, 999.0, 1000.0, 4321.0, 8000.0}) {
    CHECK_NEAR(a::mel_to_hertz_slaney(a::hertz_to_mel_slaney(hz)), hz, 1e-9);
  }
  // float32 values of transformers' mel_filter_bank(201, 128, 0, 8000, 16000, "slaney", "slaney").
  const std::vector<double> bank = a::slaney_mel_filter_bank(201, 128, 0.0, 8000.0, 16000);
  auto at = [&](size_t k, size_t m) { return static_cast<float>(bank[k * 128 + m]); };
  CHECK_EQ(at(1, 0), 0.012373986653983593f);
  CHECK_EQ(at(1, 1), 0.030392564833164215f);
  CHECK_EQ(at(24, 40), 0.040376365184783936f);
  CHECK_EQ(at(79, 90), 0.006184019148349762f);
  CHECK_EQ(at(80, 90), 0.012934732250869274f);
  CHECK_EQ(at(81, 90), 0.00629778765141964f);
  CHECK_EQ(at(191, 127), 0.0004756950947921723f);
  CHECK_EQ(at(199, 127), 0.0011142801959067583f);
  CHECK_EQ(at(200, 127), 0.0f);
  CHECK_EQ(at(0, 0), 0.0f);
  CHECK_EQ(at(2, 1), 0.0f);
}

void test_chunked_equals_whole() {
  for (const LogMelConfig& c : {realtime_config(), [] {
                                  LogMelConfig o = realtime_config();  // odd FFT, hop = window
                                  o.n_fft = 401;
                                  o.hop_length = 401;
                                  o.num_mel_bins = 40;
                                  return o;
                                }()}) {
    std::vector<float> x = tone(16000 + 77, 440.0, 0.5, c.sample_rate);
    const std::vector<float> chirp = tone(x.size(), 3001.0, 0.1, c.sample_rate);
    for (size_t i = 0; i < x.size(); ++i) x[i] += chirp[i];
    const auto whole = run_chunked(c, x, {x.size()});
    CHECK_EQ(whole.size(), (x.size() + 2 * (c.n_fft / 2) - c.n_fft) / c.hop_length);
    for (const std::vector<size_t>& sizes : std::vector<std::vector<size_t>>{
             {1}, {37}, {160}, {1280}, {7, 1, 400, 0, 1999, 3, 160, 161}, {200}, {201}}) {
      const auto chunked = run_chunked(c, x, sizes);
      CHECK_EQ(chunked.size(), whole.size());
      bool same = chunked.size() == whole.size();
      for (size_t f = 0; same && f < whole.size(); ++f) same = chunked[f] == whole[f];
      CHECK(same);  // bit for bit: the same arithmetic on the same samples
    }
  }
}

void test_silence_and_values() {
  LogMel mel = make();
  std::vector<float> zeros(16000, 0.f);
  CHECK(mel.feed(zeros.data(), zeros.size()).ok());
  CHECK(mel.finish().ok());
  CHECK_EQ(mel.frames_ready(), 100u);
  const float floor = (1.5f - 8.f + 4.f) / 4.f;  // -0.625
  bool all_floor = true;
  for (float v : read_all(mel)) all_floor = all_floor && v == floor;
  CHECK(all_floor);
  CHECK_EQ(floor, -0.625f);

  // A loud tone peaks in the mel bin around its frequency, well above the floor.
  LogMel t = make();
  const std::vector<float> x = tone(8000, 1000.0, 0.5, 16000);
  CHECK(t.feed(x.data(), x.size()).ok());
  const size_t n = t.frames_ready();
  const std::vector<float> out = read_all(t);
  size_t peak = 0;
  for (size_t m = 0; m < 128; ++m) {
    if (out[m * n + n / 2] > out[peak * n + n / 2]) peak = m;
  }
  // 1 kHz = 15 Slaney mel; filter m peaks at (m + 1) * 45.25 / 129 mel: m = 41.8.
  CHECK(peak == 41 || peak == 42);
  CHECK(out[peak * n + n / 2] > 0.5f);
}

void test_frame_counts() {
  const LogMelConfig c = realtime_config();
  for (size_t n : {0, 1, 2, 5, 100, 159, 160, 199, 200, 201, 202, 359, 360, 361, 399, 400, 401, 1280, 16000, 16001}) {
    LogMel mel = make(c);
    std::vector<float> x = tone(n, 300.0, 0.3, 16000);
    CHECK(mel.feed(x.data(), x.size()).ok());
    // Streaming: frame j is out once samples [j*hop - 200, j*hop + 200) exist and j < N / hop.
    const size_t streamed = n > 200 ? std::min(n / 160, (n - 200) / 160 + 1) : 0;
    CHECK_EQ(mel.frames_ready(), streamed);
    CHECK(mel.finish().ok());
    CHECK_EQ(mel.frames_ready(), n / 160);  // torch.stft center=True: 1 + N / hop, minus the last
    CHECK_EQ(mel.num_frames(n), n / 160);
    for (float v : read_all(mel)) CHECK(std::isfinite(v));
  }
}

void test_read_frames_layout() {
  const std::vector<float> x = tone(5000, 700.0, 0.2, 16000);
  LogMel a = make(), b = make();
  CHECK(a.feed(x.data(), x.size()).ok());
  CHECK(b.feed(x.data(), x.size()).ok());
  const size_t n = a.frames_ready();
  CHECK(n >= 24);
  const std::vector<float> all = read_all(a);  // [128, n]
  // Columns of a [128, 24] encoder input, 8 frames at a time.
  std::vector<float> enc(128 * 24, 0.f);
  for (size_t col = 0; col < 24; col += 8) CHECK(b.read_frames(8, enc.data() + col, 24).ok());
  bool same = true;
  for (size_t m = 0; m < 128; ++m)
    for (size_t f = 0; f < 24; ++f) same = same && enc[m * 24 + f] == all[m * n + f];
  CHECK(same);
  CHECK_EQ(b.frames_ready(), n - 24);
  CHECK(b.read_frames(0, nullptr).ok());
  CHECK_EQ(b.read_frames(n, enc.data()).code(), ErrorCode::kOutOfRange);
  CHECK_EQ(b.read_frames(1, nullptr).code(), ErrorCode::kInvalidArgument);
  CHECK_EQ(b.read_frames(4, enc.data(), 3).code(), ErrorCode::kInvalidArgument);
  CHECK_EQ(b.frames_ready(), n - 24);  // failed reads consume nothing
}

void test_errors_and_state() {
  LogMel mel = make();
  std::vector<float> x = tone(1000, 440.0, 0.5, 16000);
  CHECK(mel.feed(x.data(), 500).ok());
  const uint64_t fed = mel.samples_fed();
  const size_t ready = mel.frames_ready();
  x[600] = std::nanf("");
  CHECK_EQ(mel.feed(x.data() + 500, 500).code(), ErrorCode::kInvalidArgument);
  x[600] = INFINITY;
  CHECK_EQ(mel.feed(x.data() + 500, 500).code(), ErrorCode::kInvalidArgument);
  CHECK_EQ(mel.samples_fed(), fed);  // nothing consumed
  CHECK_EQ(mel.frames_ready(), ready);
  CHECK_EQ(mel.feed(nullptr, 3).code(), ErrorCode::kInvalidArgument);
  CHECK(mel.feed(nullptr, 0).ok());
  CHECK(mel.finish().ok());
  CHECK(mel.finished());
  CHECK(mel.finish().ok());  // idempotent
  CHECK_EQ(mel.feed(x.data(), 1).code(), ErrorCode::kFailedPrecondition);
  CHECK_EQ(mel.frames_ready(), 500u / 160);

  // reset(): a new clip from frame 0, the same frames as a fresh object.
  mel.reset();
  CHECK(!mel.finished());
  CHECK_EQ(mel.frames_ready(), 0u);
  const std::vector<float> y = tone(3000, 200.0, 0.3, 16000);
  CHECK(mel.feed(y.data(), y.size()).ok());
  CHECK(mel.finish().ok());
  LogMel fresh = make();
  CHECK(fresh.feed(y.data(), y.size()).ok());
  CHECK(fresh.finish().ok());
  CHECK(read_all(mel) == read_all(fresh));

  // Moved-from objects answer with errors, not crashes.
  LogMel moved = std::move(fresh);
  CHECK_EQ(fresh.feed(y.data(), 1).code(), ErrorCode::kFailedPrecondition);  // NOLINT: use after move on purpose
  CHECK_EQ(fresh.finish().code(), ErrorCode::kFailedPrecondition);
  CHECK_EQ(fresh.frames_ready(), 0u);
  CHECK(moved.finished());
}

void test_bad_configs() {
  auto code = [](void (*edit)(LogMelConfig&)) {
    LogMelConfig c = realtime_config();
    edit(c);
    CHECK_EQ(c.validate().code(), LogMel::create(c).status().code());
    return c.validate().code();
  };
  const ErrorCode bad = ErrorCode::kInvalidArgument;
  CHECK_EQ(code([](LogMelConfig&) {}), ErrorCode::kOk);
  CHECK_EQ(LogMelConfig().validate().code(), bad);  // every model field must be filled
  CHECK_EQ(code([](LogMelConfig& c) { c.sample_rate = 0; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.n_fft = 1; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.n_fft = -400; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.hop_length = 0; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.hop_length = 401; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.num_mel_bins = 0; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.global_log_mel_max = NAN; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.f_max = 8000.5; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.f_min = -1; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.f_min = 4000; c.f_max = 4000; }), bad);
  CHECK_EQ(code([](LogMelConfig& c) { c.f_min = 8000; }), bad);  // f_max defaults to 8000
  CHECK_EQ(code([](LogMelConfig& c) { c.f_min = 20; c.f_max = 7600; }), ErrorCode::kOk);
  const auto m = LogMel::create(realtime_config());
  CHECK(m.ok());
  CHECK_EQ(m->config().f_max, 8000.0);  // resolved
}

void time_frames() {  // a print, not a timed test
  LogMel mel = make();
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 0.1f);
  std::vector<float> x(16000 * 30);
  for (float& v : x) v = g(rng);
  std::vector<float> sink(128 * 8);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t at = 0; at < x.size(); at += 1280) {
    CHECK(mel.feed(x.data() + at, std::min<size_t>(1280, x.size() - at)).ok());
    while (mel.frames_ready() >= 8) CHECK(mel.read_frames(8, sink.data()).ok());
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::printf("log-mel: %.2f us per frame (%llu frames, 1280-sample chunks)\n",
              us / static_cast<double>(mel.frames_produced()), static_cast<unsigned long long>(mel.frames_produced()));
}

}  // namespace

int main() {
  test_fft();
  test_mel_filters();
  test_chunked_equals_whole();
  test_silence_and_values();
  test_frame_counts();
  test_read_frames_layout();
  test_errors_and_state();
  test_bad_configs();
  time_frames();
  TEST_MAIN_RETURN();
}
