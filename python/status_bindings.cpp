#include "bindings.h"

namespace voxtral::python {

void throw_status(const Status& status) {
  // voxtral_native.errors maps code names to exception classes (InvalidArgument ->
  // InvalidArgumentError, a ValueError; NotFound -> NotFoundError, a FileNotFoundError...).
  py::object errors = py::module_::import("voxtral_native.errors");
  py::object cls = errors.attr("exception_class")(error_code_name(status.code()));
  PyErr_SetObject(cls.ptr(), py::str(status.message()).ptr());
  throw py::error_already_set();
}

void register_status(py::module_& m) {
  // Lets tests check that every C++ code reaches Python as its own exception class.
  m.def(
      "_raise_status", [](const std::string& code_name, const std::string& message) {
        for (int c = 1; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
          auto code = static_cast<ErrorCode>(c);
          if (code_name == error_code_name(code)) throw_status(Status(code, message));
        }
        throw_status(Status(ErrorCode::kInvalidArgument, "unknown error code name '" + code_name + "'"));
      },
      py::arg("code"), py::arg("message"));
}

}  // namespace voxtral::python
