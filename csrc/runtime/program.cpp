// voxtral::Program: the seam over the program backends. It picks a backend by the file
// (an AOTInductor package is a zip archive, an ExecuTorch program is not), checks what is
// the same for every backend (file readable, method known) and forwards to the backend's
// Program::Impl (csrc/backends/). No backend header is included here.
#include "voxtral/program.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include "backends/program_impl.h"
#include "runtime/profile.h"

namespace voxtral {

namespace backend {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace backend

namespace {

#if !VOXTRAL_BACKEND_AOTI
std::string joined(const std::vector<std::string>& names, const char* sep) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? sep : "") + names[i];
  return s;
}
#endif

// An AOTInductor package (.pt2) is a zip archive; an ExecuTorch program (.pte) is a
// flatbuffer, which never starts with the zip magic. The extension alone would miss a
// renamed package, the magic alone a truncated one that should still get the aoti error.
bool is_aoti_package(const std::string& path, const std::string& head) {
  const std::string ext = ".pt2";
  bool by_name = path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  return by_name || head == std::string("PK\x03\x04", 4);
}

}  // namespace

std::vector<std::string> backends() {
  std::vector<std::string> names = {"xnnpack"};
#if VOXTRAL_BACKEND_AOTI
  names.push_back("aoti");
#endif
  return names;
}

Program::Program(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Program::~Program() = default;

Result<std::unique_ptr<Program>> Program::load(const std::string& path, const ProgramOptions& options) {
  std::ifstream file(path, std::ios::binary);
  if (!file.good()) {
    return Status(ErrorCode::kNotFound, "program file '" + path + "' does not exist or cannot be read");
  }
  std::string head(4, '\0');
  file.read(head.data(), 4);
  head.resize(static_cast<size_t>(std::max<std::streamsize>(file.gcount(), 0)));
  file.close();

  std::unique_ptr<Impl> impl;
  if (is_aoti_package(path, head)) {
#if VOXTRAL_BACKEND_AOTI
    VOXTRAL_ASSIGN_OR_RETURN(impl, backend::load_aoti(path, options));
#else
    return Status(ErrorCode::kInvalidProgram,
                  "'" + path + "' is an AOTInductor package (exported for aoti); this build has " +
                      joined(backends(), ", ") + ". Rebuild with -DVOXTRAL_BACKENDS=xnnpack;aoti");
#endif
  } else {
    VOXTRAL_ASSIGN_OR_RETURN(impl, backend::load_executorch(path, options));
  }
  return std::unique_ptr<Program>(new Program(std::move(impl)));
}

const std::string& Program::path() const { return impl_->path(); }
std::vector<std::string> Program::method_names() const { return impl_->method_names(); }
bool Program::has_method(const std::string& name) const {
  const auto& methods = impl_->method_names();
  return std::binary_search(methods.begin(), methods.end(), name);
}

namespace {
Status no_method(const std::string& path, const std::string& method) {
  return Status(ErrorCode::kNotFound, "program '" + path + "' has no method '" + method + "'");
}
}  // namespace

Result<int64_t> Program::constant_int(const std::string& name) {
  if (!has_method(name)) return no_method(path(), name);
  return impl_->constant_int(name);
}

Result<double> Program::constant_double(const std::string& name) {
  if (!has_method(name)) return no_method(path(), name);
  return impl_->constant_double(name);
}

Status Program::prepare(const std::string& method) {
  if (!has_method(method)) return no_method(path(), method);
  return impl_->prepare(method);
}

Result<int64_t> Program::planned_memory_bytes(const std::string& method) {
  if (!has_method(method)) return no_method(path(), method);
  return impl_->planned_memory_bytes(method);
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kInt64: return "int64";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

Result<std::vector<TensorView>> Program::execute(const std::string& method, const std::vector<TensorView>& inputs) {
  if (!has_method(method)) return no_method(path(), method);
  if (!profiling()) return impl_->execute(method, inputs);
  const auto start = std::chrono::steady_clock::now();
  auto result = impl_->execute(method, inputs);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  profile_add(method + " " + (inputs.empty() ? std::string("[]") : backend::shape_string(inputs[0].shape)),
              took.count());
  return result;
}

Result<std::vector<FloatTensor>> Program::run(const std::string& method, const std::vector<FloatTensor>& inputs) {
  std::vector<TensorView> views;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const FloatTensor& in = inputs[i];
    TensorView view = TensorView::f32(in.data.data(), in.shape);
    if (view.numel() != static_cast<int64_t>(in.data.size())) {
      return Status(ErrorCode::kInvalidArgument,
                    "input " + std::to_string(i) + " of '" + method + "' has shape " +
                        backend::shape_string(in.shape) + " but " + std::to_string(in.data.size()) + " values");
    }
    views.push_back(std::move(view));
  }
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out, execute(method, views));
  std::vector<FloatTensor> result;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].dtype != DType::kFloat32) {
      return Status(ErrorCode::kInvalidProgram,
                    "output " + std::to_string(i) + " of '" + method + "' is not float32 (use execute())");
    }
    result.push_back(FloatTensor{out[i].shape, std::vector<float>(out[i].f32(), out[i].f32() + out[i].numel())});
  }
  return result;
}

}  // namespace voxtral
