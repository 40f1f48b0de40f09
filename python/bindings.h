// Shared by the binding files: Status/Result -> Python exceptions, in one place.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>

#include "voxtral/status.h"

namespace voxtral::python {

namespace py = pybind11;

// Raises the voxtral_native.errors exception for `status` (GIL must be held).
[[noreturn]] void throw_status(const Status& status);

inline void unwrap(const Status& status) {
  if (!status.ok()) throw_status(status);
}

template <typename T>
T unwrap(Result<T>&& result) {
  if (!result.ok()) throw_status(result.status());
  return std::move(result).value();
}

// Runs a long native call with the GIL released; its Result is unwrapped after the
// GIL is taken back.
template <typename F>
auto without_gil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

// Audio samples from Python: any array-like, converted to contiguous float32.
using SampleArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// Feeds a 1-D sample array to `target.feed(data, n)` with the GIL released.
template <typename T>
void feed_samples(T& target, const SampleArray& samples) {
  if (samples.ndim() != 1) throw py::value_error("feed() takes a 1-D array of samples");
  unwrap(without_gil([&] { return target.feed(samples.data(), static_cast<size_t>(samples.size())); }));
}

// A runner's metadata entries as a dict (name -> int or float), in table order.
template <typename Entries>
py::dict metadata_dict(const Entries& entries) {
  py::dict d;
  for (const auto& e : entries) {
    if (e.is_integer) {
      d[py::str(e.name)] = e.int_value;
    } else {
      d[py::str(e.name)] = e.double_value;
    }
  }
  return d;
}

void register_status(py::module_& m);
void register_program(py::module_& m);
void register_log_mel(py::module_& m);
void register_stt(py::module_& m);
void register_tokenizer(py::module_& m);
void register_tts(py::module_& m);

}  // namespace voxtral::python
