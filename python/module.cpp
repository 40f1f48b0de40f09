// voxtral_native._core: the compiled half of the Python package. Ergonomics (files,
// resampling, generators, dataclasses) live in Python; this module stays thin.
#include "bindings.h"
#include "voxtral/voxtral.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Native core of voxtral-native (libvoxtral bindings)";
  m.attr("__version__") = voxtral::version();
  voxtral::python::register_status(m);
  voxtral::python::register_program(m);
  voxtral::python::register_log_mel(m);
  voxtral::python::register_stt(m);
  voxtral::python::register_tokenizer(m);
  voxtral::python::register_tts(m);
}
