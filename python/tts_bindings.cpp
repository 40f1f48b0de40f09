#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "voxtral/bf16.h"
#include "voxtral/tts.h"

namespace voxtral::python {

namespace {

py::array_t<float> to_array(std::vector<float>&& samples) {
  auto* owned = new std::vector<float>(std::move(samples));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<float>*>(p); });
  return py::array_t<float>({static_cast<py::ssize_t>(owned->size())}, {sizeof(float)}, owned->data(), free_when_done);
}

}  // namespace

void register_tts(py::module_& m) {
  m.def(
      "tts_noise", [](uint64_t seed, size_t n) { return to_array(tts_noise(seed, n)); }, py::arg("seed"), py::arg("n"),
      "The first n normal values a synthesis session seeded with `seed` draws (float32).");
  m.def(
      "to_bfloat16_bits",
      [](const py::array_t<float, py::array::c_style | py::array::forcecast>& values) {
        py::array_t<uint16_t> out(values.size());
        float_to_bf16(values.data(), out.mutable_data(), static_cast<size_t>(values.size()));
        return out;
      },
      py::arg("values"), "float32 values -> bf16 bits (uint16), rounded to nearest even, as the runners stage them.");
  m.def(
      "from_bfloat16_bits",
      [](const py::array_t<uint16_t, py::array::c_style | py::array::forcecast>& bits) {
        std::vector<float> out(static_cast<size_t>(bits.size()));
        bf16_to_float(bits.data(), out.data(), out.size());
        return to_array(std::move(out));
      },
      py::arg("bits"), "bf16 bits (uint16) -> float32 values.");

  py::class_<TtsRunner, std::shared_ptr<TtsRunner>>(m, "TtsRunner", "Loaded text-to-speech model (immutable, shareable).")
      .def_static(
          "load", [](const std::string& model_dir) { return unwrap(without_gil([&] { return TtsRunner::load(model_dir); })); },
          py::arg("model_dir"))
      .def(
          "new_session",
          [](const TtsRunner& r, const std::string& text, const std::string& voice, uint64_t seed, int64_t max_frames,
             float temperature, int pause_frames) {
            TtsRequest request;
            request.text = text;
            request.voice = voice;
            request.seed = seed;
            request.max_frames = max_frames;
            request.temperature = temperature;
            request.pause_frames = pause_frames;
            return unwrap(without_gil([&] { return r.new_session(request); }));
          },
          py::arg("text"), py::arg("voice") = "", py::arg("seed") = 42, py::arg("max_frames") = 0,
          py::arg("temperature") = 0.f, py::arg("pause_frames") = 3)
      .def(
          "split_text",
          [](const TtsRunner& r, const std::string& text, const std::string& voice) {
            return unwrap(r.split_text(text, voice));
          },
          py::arg("text"), py::arg("voice") = "", "The utterances `text` is spoken as.")
      .def_property_readonly("voices", &TtsRunner::voices)
      .def_property_readonly("default_voice", &TtsRunner::default_voice)
      .def_property_readonly("session_memory_bytes", &TtsRunner::session_memory_bytes)
      .def_property_readonly(
          "metadata",
          [](const TtsRunner& r) { return metadata_dict(r.metadata_entries()); },
          "The program's constants by name (csrc/tts/metadata.cpp's table).");

  py::class_<TtsSession>(m, "TtsSession", "One synthesis request (pull chunks with next(); not thread-safe).")
      .def(
          "next",
          [](TtsSession& s) {
            AudioChunk chunk = unwrap(without_gil([&] { return s.next(); }));
            return py::make_tuple(to_array(std::move(chunk.samples)), chunk.first_sample, chunk.last);
          },
          "The next chunk as (samples float32, first_sample, last) (GIL released while it runs).")
      .def_property_readonly("done", &TtsSession::done)
      .def_property_readonly("frames", &TtsSession::frames)
      .def_property_readonly("samples", &TtsSession::samples)
      .def_property_readonly("utterances", &TtsSession::utterances)
      .def("codes", [](const TtsSession& s) {
        std::vector<int64_t> codes = s.codes();
        const py::ssize_t n = static_cast<py::ssize_t>(codes.size());
        py::array_t<int64_t> out(n);
        std::copy(codes.begin(), codes.end(), out.mutable_data());
        return out;
      }, "Codes of the frames emitted so far, flat (reshape to [frames, n_codebooks]).");
}

}  // namespace voxtral::python
