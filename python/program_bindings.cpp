#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
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

}  // namespace

void register_program(py::module_& m) {
  py::class_<Program>(m, "Program", "One exported program (.pte); not thread-safe, one per stream.")
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
          py::arg("method"), py::arg("inputs"), "Runs a method on float32 arrays; returns float32 arrays.");
}

}  // namespace voxtral::python
