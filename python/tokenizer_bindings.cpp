#include <pybind11/stl.h>

#include <climits>
#include <optional>

#include "bindings.h"
#include "voxtral/tokenizer.h"

namespace voxtral::python {

namespace {

// mistral_common's SpecialTokenPolicy is a StrEnum, so its members are these strings too.
SpecialTokenPolicy policy_from(const py::object& policy) {
  if (policy.is_none()) return SpecialTokenPolicy::kIgnore;
  if (py::isinstance<py::str>(policy)) {
    const std::string s = policy.cast<std::string>();
    if (s == "ignore") return SpecialTokenPolicy::kIgnore;
    if (s == "keep") return SpecialTokenPolicy::kKeep;
    if (s == "raise") return SpecialTokenPolicy::kRaise;
  }
  throw_status(Status(ErrorCode::kInvalidArgument, "special_token_policy must be 'ignore', 'keep' or 'raise', got " +
                                                       py::repr(policy).cast<std::string>()));
}

// The UTF-8 of `text`. Like tiktoken, a str holding surrogates (not encodable as UTF-8)
// is first passed through text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"):
// paired halves join, lone ones become U+FFFD.
std::string_view utf8_of(const py::str& text, std::string& storage) {
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(text.ptr(), &n);
  if (p != nullptr) return {p, static_cast<size_t>(n)};
  PyErr_Clear();
  storage = text.attr("encode")("utf-16", "surrogatepass").attr("decode")("utf-16", "replace").cast<std::string>();
  return storage;
}

[[noreturn]] void id_out_of_range(const Tokenizer& t, const std::string& id) {
  throw_status(Status(ErrorCode::kOutOfRange,
                      "token id " + id + " is outside [0, " + std::to_string(t.vocab_size()) + ")"));
}

int checked_id(const Tokenizer& t, PyObject* item) {
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();  // not an int
  if (overflow != 0 || v < 0 || v >= t.vocab_size())
    id_out_of_range(t, py::str(py::handle(item)).cast<std::string>());
  return static_cast<int>(v);
}

// Token ids from a list, tuple, NumPy array or any iterable of ints, checked against the
// vocab (OutOfRangeError); lists and tuples are read without per-item casters.
std::vector<int> ids_from(const Tokenizer& t, const py::handle& ids) {
  std::vector<int> out;
  if (PyList_Check(ids.ptr()) || PyTuple_Check(ids.ptr())) {
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(ids.ptr());
    PyObject** items = PySequence_Fast_ITEMS(ids.ptr());
    out.resize(static_cast<size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = checked_id(t, items[i]);
    return out;
  }
  for (const py::handle item : py::iter(ids)) {
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(item.ptr()));
    if (!as_int) throw py::error_already_set();
    out.push_back(checked_id(t, as_int.ptr()));
  }
  return out;
}

int id_from(const Tokenizer& t, int64_t id) {
  if (id < 0 || id >= t.vocab_size()) id_out_of_range(t, std::to_string(id));
  return static_cast<int>(id);
}

}  // namespace

void register_tokenizer(py::module_& m) {
  py::class_<AudioConfig>(m, "AudioConfig", "The audio block of tekken.json (mistral_common's AudioConfig).")
      .def_readonly("sampling_rate", &AudioConfig::sampling_rate)
      .def_readonly("frame_rate", &AudioConfig::frame_rate)
      .def_readonly("num_mel_bins", &AudioConfig::num_mel_bins)
      .def_readonly("hop_length", &AudioConfig::hop_length)
      .def_readonly("window_size", &AudioConfig::window_size)
      .def_readonly("chunk_length_s", &AudioConfig::chunk_length_s)
      .def_readonly("streaming", &AudioConfig::streaming)
      .def_readonly("transcription_delay_ms", &AudioConfig::transcription_delay_ms)
      .def_readonly("streaming_look_ahead_ms", &AudioConfig::streaming_look_ahead_ms)
      .def_readonly("streaming_look_back_ms", &AudioConfig::streaming_look_back_ms)
      .def_readonly("streaming_n_left_pad_tokens", &AudioConfig::streaming_n_left_pad_tokens)
      .def_readonly("voice_num_audio_tokens", &AudioConfig::voice_num_audio_tokens)
      .def_property_readonly("samples_per_token", &AudioConfig::samples_per_token)
      .def("num_delay_tokens", &AudioConfig::num_delay_tokens, py::arg("delay_ms") = py::none())
      .def("__repr__", [](const AudioConfig& a) {
        return "AudioConfig(sampling_rate=" + std::to_string(a.sampling_rate) +
               ", frame_rate=" + py::repr(py::float_(a.frame_rate)).cast<std::string>() +
               ", streaming=" + (a.streaming ? "True" : "False") + ")";
      });

  py::class_<Tokenizer>(m, "Tokenizer",
                        "The Tekken tokenizer of a tekken.json: the ids and text of mistral_common's Tekkenizer. "
                        "Immutable; share it between threads.")
      .def_static(
          "from_file",
          [](const std::string& path) { return unwrap(without_gil([&] { return Tokenizer::load(path); })); },
          py::arg("path"))
      .def(
          "encode",
          [](const Tokenizer& t, const py::str& text, bool bos, bool eos) {
            std::string storage;
            const std::string_view utf8 = utf8_of(text, storage);
            return unwrap(without_gil([&] { return t.encode(utf8, bos, eos); }));
          },
          py::arg("text"), py::arg("bos") = false, py::arg("eos") = false)
      .def(
          "encode_bytes",
          [](const Tokenizer& t, const py::bytes& data, bool bos, bool eos) {
            const std::string_view bytes = data;
            return unwrap(without_gil([&] { return t.encode_bytes(bytes, bos, eos); }));
          },
          py::arg("data"), py::arg("bos") = false, py::arg("eos") = false,
          "Ids of raw bytes; ill-formed UTF-8 becomes U+FFFD first, as bytes.decode('utf-8', 'replace').")
      .def(
          "decode",
          [](const Tokenizer& t, const py::object& ids, const py::object& policy) {
            const std::vector<int> checked = ids_from(t, ids);
            const SpecialTokenPolicy p = policy_from(policy);
            return unwrap(without_gil([&] { return t.decode(checked, p); }));
          },
          py::arg("ids"), py::arg("special_token_policy") = py::none())
      .def(
          "token_bytes",
          [](const Tokenizer& t, int64_t id) { return py::bytes(std::string(unwrap(t.token_bytes(id_from(t, id))))); },
          py::arg("id"))
      .def(
          "piece", [](const Tokenizer& t, int64_t id) { return unwrap(t.piece(id_from(t, id))); }, py::arg("id"))
      .def(
          "id_of", [](const Tokenizer& t, const std::string& name) { return unwrap(t.id_of(name)); }, py::arg("name"))
      .def("is_control", &Tokenizer::is_control, py::arg("id"))
      .def(
          "stream_decoder",
          [](const Tokenizer& t, const py::object& policy) { return StreamDecoder(t, policy_from(policy)); },
          py::arg("special_token_policy") = py::none(), py::keep_alive<0, 1>())
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("num_special_tokens", &Tokenizer::num_special_tokens)
      .def_property_readonly("version", &Tokenizer::version)
      .def_property_readonly("pattern", &Tokenizer::pattern)
      .def_property_readonly("path", &Tokenizer::source)
      .def_property_readonly("audio", &Tokenizer::audio, py::return_value_policy::reference_internal)
      .def_property_readonly_static("unicode_version", [](const py::object&) { return Tokenizer::unicode_version(); })
      .def("__repr__", [](const Tokenizer& t) {
        return "<Tokenizer " + py::repr(py::str(t.source())).cast<std::string>() +
               " vocab_size=" + std::to_string(t.vocab_size()) +
               " num_special_tokens=" + std::to_string(t.num_special_tokens()) + ">";
      });

  py::class_<StreamDecoder>(m, "StreamDecoder",
                            "Incremental decode of one stream: push(id) returns the text completed by that token.")
      .def(py::init([](const Tokenizer& t, const py::object& policy) { return StreamDecoder(t, policy_from(policy)); }),
           py::arg("tokenizer"), py::arg("special_token_policy") = py::none(), py::keep_alive<1, 2>())
      .def(
          "push",
          [](StreamDecoder& d, int64_t id) {
            if (id < INT_MIN || id > INT_MAX)
              throw_status(Status(ErrorCode::kOutOfRange, "token id " + std::to_string(id) + " is out of range"));
            return unwrap(d.push(static_cast<int>(id)));
          },
          py::arg("id"))
      .def("flush", &StreamDecoder::flush)
      .def_property_readonly("pending_bytes", &StreamDecoder::pending_bytes);
}

}  // namespace voxtral::python
