#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "voxtral/bf16.h"
#include "voxtral/program.h"

namespace voxtral::python {

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

FloatTensor to_tensor(const FloatArray& a) {
  FloatTensor t;
  t.shape.assign(a.shape(), a.shape() + a.ndim());
  t.data.assign(a.data(), a.data() + a.size());
  return t;
}

py::array_t<float> to_array(FloatTensor&& t) {
  py::array_t<float> a(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
  std::copy(t.data.begin(), t.data.end(), a.mutable_data());
  return a;
}

// execute(): inputs as float32 or int64 arrays (integer arrays become int64, anything else
// float32), outputs copied out of the program's memory (bf16 widened to float32, exactly).
py::list execute(Program& p, const std::string& method, const std::vector<py::array>& inputs) {
  std::vector<py::array> arrays;  // keep the converted arrays alive during the call
  std::vector<TensorView> views;
  for (const py::array& in : inputs) {
    const char kind = in.dtype().kind();
    if (kind == 'i' || kind == 'u' || kind == 'b') {
      arrays.push_back(py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(in));
    } else {
      arrays.push_back(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(in));
    }
    const py::array& a = arrays.back();
    std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
    if (kind == 'i' || kind == 'u' || kind == 'b') {
      views.push_back(TensorView::i64(static_cast<const int64_t*>(a.data()), std::move(shape)));
    } else {
      views.push_back(TensorView::f32(static_cast<const float*>(a.data()), std::move(shape)));
    }
  }
  auto outputs = unwrap(without_gil([&] { return p.execute(method, views); }));
  py::list result;
  for (const TensorView& out : outputs) {
    std::vector<py::ssize_t> shape(out.shape.begin(), out.shape.end());
    if (out.dtype == DType::kInt64) {
      py::array_t<int64_t> a(shape);
      std::copy(out.i64(), out.i64() + out.numel(), a.mutable_data());
      result.append(a);
    } else {
      py::array_t<float> a(shape);
      if (out.dtype == DType::kBFloat16) {
        bf16_to_float(out.bf16(), a.mutable_data(), static_cast<size_t>(out.numel()));
      } else {
        std::copy(out.f32(), out.f32() + out.numel(), a.mutable_data());
      }
      result.append(a);
    }
  }
  return result;
}

}  // namespace

void register_program(py::module_& m) {
  m.def("backends", &backends, "The program backends this build runs, e.g. ['xnnpack'] or ['xnnpack', 'aoti'].");
  py::class_<Program>(m, "Program",
                      "One exported program (.pte, or .pt2 with the aoti backend); not thread-safe, one per stream.")
      .def_static(
          "load", [](const std::string& path) { return unwrap(without_gil([&] { return Program::load(path); })); },
          py::arg("path"))
      .def_property_readonly("path", &Program::path)
      .def("method_names", &Program::method_names)
      .def(
          "planned_memory_bytes",
          [](Program& p, const std::string& method) { return unwrap(p.planned_memory_bytes(method)); },
          py::arg("method"), "Bytes the runtime plans for the method when it loads (activations, state).")
      .def("has_method", &Program::has_method, py::arg("name"))
      .def(
          "constant_int", [](Program& p, const std::string& name) { return unwrap(p.constant_int(name)); },
          py::arg("name"))
      .def(
          "constant_double", [](Program& p, const std::string& name) { return unwrap(p.constant_double(name)); },
          py::arg("name"))
      .def(
          "run",
          [](Program& p, const std::string& method, const std::vector<FloatArray>& inputs) {
            std::vector<FloatTensor> tensors;
            for (const auto& a : inputs) tensors.push_back(to_tensor(a));
            auto outputs = unwrap(without_gil([&] { return p.run(method, tensors); }));
            py::list result;
            for (auto& t : outputs) result.append(to_array(std::move(t)));
            return result;
          },
          py::arg("method"), py::arg("inputs"), "Runs a method on float32 arrays; returns float32 arrays.")
      .def("execute", &execute, py::arg("method"), py::arg("inputs"),
           "Runs a method on float32 / int64 arrays; returns copies of its outputs (bf16 as float32).");
}

}  // namespace voxtral::python
