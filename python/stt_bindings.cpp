#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "voxtral/stt.h"
#include "voxtral/voxtral.h"

namespace voxtral::python {

void register_stt(py::module_& m) {
  m.def("set_num_threads", [](int n) { unwrap(set_num_threads(n)); }, py::arg("num_threads"));
  m.def("num_threads", &num_threads);

  py::class_<SttRunner, std::shared_ptr<SttRunner>>(m, "SttRunner",
                                                     "Loaded speech-to-text model (immutable, shareable).")
      .def_static(
          "load",
          [](const std::string& model_dir, int delay_ms, int speculative_tokens, int batch_tokens) {
            SttOptions options;
            options.delay_ms = delay_ms;
            options.speculative_tokens = speculative_tokens;
            options.batch_tokens = batch_tokens;
            return unwrap(without_gil([&] { return SttRunner::load(model_dir, options); }));
          },
          py::arg("model_dir"), py::arg("delay_ms") = 0, py::arg("speculative_tokens") = -1,
          py::arg("batch_tokens") = 1)
      .def("new_session",
           [](const SttRunner& r) { return unwrap(without_gil([&] { return r.new_session(); })); })
      .def(
          "id_of", [](const SttRunner& r, const std::string& name) { return unwrap(r.tokenizer().id_of(name)); },
          py::arg("name"), "Id of a control token of the runner's tokenizer ('[STREAMING_WORD]', ...).")
      .def_property_readonly("delay_ms", &SttRunner::delay_ms)
      .def_property_readonly("delay_tokens", &SttRunner::delay_tokens)
      .def_property_readonly("session_memory_bytes", &SttRunner::session_memory_bytes)
      .def_property_readonly(
          "metadata",
          [](const SttRunner& r) { return metadata_dict(r.metadata_entries()); },
          "The program's constants by name (csrc/stt/metadata.cpp's table).");

  py::class_<SttSession>(m, "SttSession", "One audio stream (not thread-safe).")
      .def(
          "feed",
          [](SttSession& s, const SampleArray& samples) { feed_samples(s, samples); },
          py::arg("samples"), "Appends 16 kHz mono float32 samples and runs what they complete (GIL released).")
      .def("drain",
           [](SttSession& s) {
             py::list out;
             for (TextPiece& p : s.drain()) out.append(py::make_tuple(p.text, p.token_id, p.step, p.time_s));
             return out;
           },
           "New pieces as (text, token_id, step, time_s) tuples.")
      .def("flush", [](SttSession& s) { unwrap(without_gil([&] { return s.flush(); })); })
      .def_property_readonly("samples_fed", &SttSession::samples_fed)
      .def_property_readonly("steps", &SttSession::steps)
      .def_property_readonly("decode_calls", &SttSession::decode_calls);
}

}  // namespace voxtral::python
