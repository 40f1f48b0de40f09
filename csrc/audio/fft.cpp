#include "audio/fft.h"

#include <cmath>

namespace voxtral::audio {

namespace {
using cd = std::complex<double>;
constexpr double kTwoPi = 6.283185307179586476925286766559;

std::vector<cd> unit_roots(size_t n, size_t count) {  // exp(-2 pi i k / n), k < count
  std::vector<cd> w(count);
  for (size_t k = 0; k < count; ++k) {
    const double a = -kTwoPi * static_cast<double>(k) / static_cast<double>(n);
    w[k] = cd(std::cos(a), std::sin(a));
  }
  return w;
}
}  // namespace

ComplexFft::ComplexFft(size_t n) : n_(n), twiddles_(unit_roots(n, n)) {
  // Radix 4 while it divides, then 2, 3, 5, 7, ...; a remaining prime is its own stage.
  size_t rest = n, p = 4;
  while (rest > 1) {
    while (rest % p != 0) {
      p = p == 4 ? 2 : p == 2 ? 3 : p + 2;
      if (p * p > rest) p = rest;
    }
    rest /= p;
    radix_.push_back(p);
    span_.push_back(rest);
    if (p > 5 && scratch_.size() < p) scratch_.resize(p);
  }
}

void ComplexFft::forward(const cd* in, cd* out) {
  if (radix_.empty()) {  // n <= 1
    for (size_t i = 0; i < n_; ++i) out[i] = in[i];
    return;
  }
  work(out, in, 1, 0);
}

// Decimation in time: the p sub-transforms of length m = span_[stage] (inputs strided by
// fstride * p) land contiguously in out, then one butterfly pass combines them.
void ComplexFft::work(cd* out, const cd* in, size_t fstride, size_t stage) {
  const size_t p = radix_[stage], m = span_[stage];
  cd* const end = out + p * m;
  if (m == 1) {
    for (cd* o = out; o != end; ++o, in += fstride) *o = *in;
  } else {
    for (cd* o = out; o != end; o += m, in += fstride) work(o, in, fstride * p, stage + 1);
  }
  switch (p) {
    case 2: butterfly2(out, fstride, m); break;
    case 3: butterfly3(out, fstride, m); break;
    case 4: butterfly4(out, fstride, m); break;
    case 5: butterfly5(out, fstride, m); break;
    default: butterfly_generic(out, fstride, m, p); break;
  }
}

void ComplexFft::butterfly2(cd* f, size_t fstride, size_t m) const {
  for (size_t k = 0; k < m; ++k) {
    const cd t = f[m + k] * twiddles_[k * fstride];
    f[m + k] = f[k] - t;
    f[k] += t;
  }
}

void ComplexFft::butterfly3(cd* f, size_t fstride, size_t m) const {
  const double s = twiddles_[fstride * m].imag();  // sin(-2 pi / 3)
  for (size_t k = 0; k < m; ++k) {
    const cd a = f[k];
    const cd b = f[m + k] * twiddles_[k * fstride];
    const cd c = f[2 * m + k] * twiddles_[2 * k * fstride];
    const cd sum = b + c, diff = (b - c) * s;
    const cd mid = a - 0.5 * sum;
    f[k] = a + sum;
    f[m + k] = cd(mid.real() - diff.imag(), mid.imag() + diff.real());
    f[2 * m + k] = cd(mid.real() + diff.imag(), mid.imag() - diff.real());
  }
}

void ComplexFft::butterfly4(cd* f, size_t fstride, size_t m) const {
  for (size_t k = 0; k < m; ++k) {
    const cd a = f[k];
    const cd b = f[m + k] * twiddles_[k * fstride];
    const cd c = f[2 * m + k] * twiddles_[2 * k * fstride];
    const cd d = f[3 * m + k] * twiddles_[3 * k * fstride];
    const cd s0 = a + c, s1 = a - c, s2 = b + d, s3 = b - d;
    f[k] = s0 + s2;
    f[2 * m + k] = s0 - s2;
    f[m + k] = cd(s1.real() + s3.imag(), s1.imag() - s3.real());      // s1 - i s3
    f[3 * m + k] = cd(s1.real() - s3.imag(), s1.imag() + s3.real());  // s1 + i s3
  }
}

void ComplexFft::butterfly5(cd* f, size_t fstride, size_t m) const {
  const cd ya = twiddles_[fstride * m], yb = twiddles_[2 * fstride * m];  // w5, w5^2
  for (size_t k = 0; k < m; ++k) {
    const cd s0 = f[k];
    const cd s1 = f[m + k] * twiddles_[k * fstride];
    const cd s2 = f[2 * m + k] * twiddles_[2 * k * fstride];
    const cd s3 = f[3 * m + k] * twiddles_[3 * k * fstride];
    const cd s4 = f[4 * m + k] * twiddles_[4 * k * fstride];
    const cd s7 = s1 + s4, s10 = s1 - s4, s8 = s2 + s3, s9 = s2 - s3;
    f[k] = s0 + s7 + s8;
    const cd s5 = s0 + s7 * ya.real() + s8 * yb.real();
    const cd s6(s10.imag() * ya.imag() + s9.imag() * yb.imag(), -(s10.real() * ya.imag() + s9.real() * yb.imag()));
    f[m + k] = s5 - s6;
    f[4 * m + k] = s5 + s6;
    const cd s11 = s0 + s7 * yb.real() + s8 * ya.real();
    const cd s12(-s10.imag() * yb.imag() + s9.imag() * ya.imag(), s10.real() * yb.imag() - s9.real() * ya.imag());
    f[2 * m + k] = s11 + s12;
    f[3 * m + k] = s11 - s12;
  }
}

void ComplexFft::butterfly_generic(cd* f, size_t fstride, size_t m, size_t p) {
  for (size_t u = 0; u < m; ++u) {
    for (size_t q = 0; q < p; ++q) scratch_[q] = f[u + q * m];
    for (size_t q1 = 0; q1 < p; ++q1) {
      const size_t k = u + q1 * m;
      cd acc = scratch_[0];
      size_t tw = 0;
      for (size_t q = 1; q < p; ++q) {
        tw += fstride * k;
        if (tw >= n_) tw %= n_;
        acc += scratch_[q] * twiddles_[tw];
      }
      f[k] = acc;
    }
  }
}

RealFft::RealFft(size_t n)
    : n_(n), fft_(n % 2 == 0 ? n / 2 : n), packed_(fft_.size()), spectrum_(fft_.size()) {
  if (n % 2 == 0) unpack_ = unit_roots(n, n / 2 + 1);
}

void RealFft::forward(const double* in, cd* out) {
  if (n_ == 0) return;
  if (n_ % 2 != 0) {
    for (size_t t = 0; t < n_; ++t) packed_[t] = cd(in[t], 0.0);
    fft_.forward(packed_.data(), spectrum_.data());
    for (size_t k = 0; k <= n_ / 2; ++k) out[k] = spectrum_[k];
    return;
  }
  // z[t] = x[2t] + i x[2t+1]; Z = FFT_h(z); X[k] = E[k] + w^k O[k] with
  // E = (Z[k] + conj Z[h-k]) / 2, O = (Z[k] - conj Z[h-k]) / 2i.
  const size_t h = n_ / 2;
  for (size_t t = 0; t < h; ++t) packed_[t] = cd(in[2 * t], in[2 * t + 1]);
  fft_.forward(packed_.data(), spectrum_.data());
  for (size_t k = 0; k <= h; ++k) {
    const cd zk = spectrum_[k == h ? 0 : k];
    const cd zc = std::conj(spectrum_[k == 0 ? 0 : h - k]);
    const cd e = 0.5 * (zk + zc);
    const cd d = zk - zc;
    const cd o(0.5 * d.imag(), -0.5 * d.real());  // d / 2i
    out[k] = e + unpack_[k] * o;
  }
}

}  // namespace voxtral::audio
