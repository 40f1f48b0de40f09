// Real FFT of any length (mixed radix, double precision), internal to libvoxtral.
// Log-mel needs n_fft = 400 = 2^4 * 5^2, not a power of two.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

namespace voxtral::audio {

// Complex forward DFT X[k] = sum_t x[t] exp(-2 pi i k t / n), any n >= 1: a
// decimation-in-time mixed-radix FFT with radix-4/2/3/5 butterflies and a generic one
// for other primes (O(n * sum of factors)). Not thread-safe (scratch space).
class ComplexFft {
 public:
  explicit ComplexFft(size_t n);
  size_t size() const { return n_; }
  // `in` and `out` hold n values each and must not overlap.
  void forward(const std::complex<double>* in, std::complex<double>* out);

 private:
  void work(std::complex<double>* out, const std::complex<double>* in, size_t fstride, size_t stage);
  void butterfly2(std::complex<double>* out, size_t fstride, size_t m) const;
  void butterfly3(std::complex<double>* out, size_t fstride, size_t m) const;
  void butterfly4(std::complex<double>* out, size_t fstride, size_t m) const;
  void butterfly5(std::complex<double>* out, size_t fstride, size_t m) const;
  void butterfly_generic(std::complex<double>* out, size_t fstride, size_t m, size_t p);

  size_t n_;
  std::vector<size_t> radix_;   // radix of each stage, outermost first
  std::vector<size_t> span_;    // n / (product of radices up to this stage)
  std::vector<std::complex<double>> twiddles_;  // exp(-2 pi i k / n), k < n
  std::vector<std::complex<double>> scratch_;   // generic butterfly
};

// Real forward DFT: n real samples -> bins 0..n/2 (n/2 + 1 values). Even n runs one
// complex FFT of n/2 points on the packed pairs; odd n a complex FFT of n points.
class RealFft {
 public:
  explicit RealFft(size_t n);
  size_t size() const { return n_; }
  size_t num_bins() const { return n_ / 2 + 1; }
  void forward(const double* in, std::complex<double>* out);

 private:
  size_t n_;
  ComplexFft fft_;
  std::vector<std::complex<double>> packed_, spectrum_;
  std::vector<std::complex<double>> unpack_;  // exp(-2 pi i k / n), k <= n/2 (even n)
};

}  // namespace voxtral::audio
