#include <pybind11/numpy.h>

#include <algorithm>

#include "bindings.h"
#include "voxtral/log_mel.h"

namespace voxtral::python {

void register_log_mel(py::module_& m) {
  py::class_<LogMel>(m, "LogMel",
                     "Streaming log-mel frontend of Voxtral Realtime (one stream, not thread-safe).\n"
                     "The defaults are VoxtralRealtimeFeatureExtractor's; the runner reads them from the program.")
      .def(py::init([](int sample_rate, int n_fft, int hop_length, int num_mel_bins, float global_log_mel_max,
                       double f_min, double f_max) {
             LogMelConfig c;
             c.sample_rate = sample_rate;
             c.n_fft = n_fft;
             c.hop_length = hop_length;
             c.num_mel_bins = num_mel_bins;
             c.global_log_mel_max = global_log_mel_max;
             c.f_min = f_min;
             c.f_max = f_max;
             return unwrap(LogMel::create(c));
           }),
           py::arg("sample_rate") = 16000, py::arg("n_fft") = 400, py::arg("hop_length") = 160,
           py::arg("num_mel_bins") = 128, py::arg("global_log_mel_max") = 1.5f, py::arg("f_min") = 0.0,
           py::arg("f_max") = 0.0)
      .def(
          "feed",
          [](LogMel& mel, const SampleArray& samples) { feed_samples(mel, samples); },
          py::arg("samples"), "Appends samples (float32) and computes the frames they complete (GIL released).")
      .def("finish", [](LogMel& mel) { unwrap(without_gil([&] { return mel.finish(); })); },
           "End of input: computes the last frames (right reflect padding).")
      .def(
          "read",
          [](LogMel& mel, py::object max_frames) {
            size_t n = mel.frames_ready();
            if (!max_frames.is_none()) n = std::min(n, max_frames.cast<size_t>());
            const size_t bins = static_cast<size_t>(mel.config().num_mel_bins);
            py::array_t<float> out({bins, n});
            unwrap(mel.read_frames(n, out.mutable_data(), n));
            return out;
          },
          py::arg("max_frames") = py::none(), "The ready frames (at most max_frames), float32 [num_mel_bins, frames].")
      .def("reset", &LogMel::reset)
      .def("num_frames", &LogMel::num_frames, py::arg("num_samples"), "Frames of a whole clip of num_samples.")
      .def_property_readonly("frames_ready", &LogMel::frames_ready)
      .def_property_readonly("finished", &LogMel::finished)
      .def_property_readonly("samples_fed", &LogMel::samples_fed)
      .def_property_readonly("frames_produced", &LogMel::frames_produced)
      .def_property_readonly("sample_rate", [](const LogMel& mel) { return mel.config().sample_rate; })
      .def_property_readonly("n_fft", [](const LogMel& mel) { return mel.config().n_fft; })
      .def_property_readonly("hop_length", [](const LogMel& mel) { return mel.config().hop_length; })
      .def_property_readonly("num_mel_bins", [](const LogMel& mel) { return mel.config().num_mel_bins; })
      .def_property_readonly("global_log_mel_max", [](const LogMel& mel) { return mel.config().global_log_mel_max; })
      .def_property_readonly("f_min", [](const LogMel& mel) { return mel.config().f_min; })
      .def_property_readonly("f_max", [](const LogMel& mel) { return mel.config().f_max; });
}

}  // namespace voxtral::python
