// Shared by the binding files: Status/Result -> Python exceptions, in one place.
#pragma once

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

void register_status(py::module_& m);
void register_program(py::module_& m);
void register_tokenizer(py::module_& m);

}  // namespace voxtral::python
