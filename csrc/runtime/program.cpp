// The ExecuTorch side of Program: the only file that sees ExecuTorch's Module API.
#include "voxtral/program.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/backend/options.h>


namespace voxtral {

namespace et = ::executorch;
using et::extension::module::Module;
using et::runtime::Error;
using et::runtime::EValue;

namespace {

// One place where ExecuTorch error codes become ours.
Status from_executorch(Error error, const std::string& context) {
  ErrorCode code = ErrorCode::kInternal;
  switch (error) {
    case Error::Ok: return Status::Ok();
    case Error::InvalidArgument:
    case Error::InvalidType: code = ErrorCode::kInvalidArgument; break;
    case Error::NotFound: code = ErrorCode::kNotFound; break;
    case Error::InvalidProgram:
    case Error::InvalidExternalData: code = ErrorCode::kInvalidProgram; break;
    case Error::AccessFailed: code = ErrorCode::kIoError; break;
    case Error::OperatorMissing:
    case Error::NotSupported:
    case Error::NotImplemented: code = ErrorCode::kInvalidProgram; break;
    case Error::MemoryAllocationFailed: code = ErrorCode::kInternal; break;
    default: break;
  }
  return Status(code, context + " (ExecuTorch error " + et::runtime::to_string(error) + ")");
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// XNNPACK packs each delegated weight into its own layout when a method loads. Without
// its weights cache every loaded Program (one per session) holds its own packed copy, so
// each extra session repeats the weights. With the cache on, packed weights are keyed by
// their name in the program's data map and shared by every method and Program that uses
// them (reference counted, freed with the last user). It is a process-wide backend option
// that must be set before the first method loads. Builds without XNNPACK have no such
// backend: nothing to share then, so NotFound is not an error.
void share_packed_weights_once() {
  static const bool done = [] {
    et::runtime::BackendOptions<1> options;
    options.set_option("weight_cache_enabled", true);
    Error e = et::runtime::set_option("XnnpackBackend", options.view());
    if (e != Error::Ok && e != Error::NotFound) {
      std::fprintf(stderr, "voxtral: could not enable XNNPACK's weight cache (ExecuTorch error %s); "
                   "each session will pack its own weights\n", et::runtime::to_string(e));
    }
    return true;
  }();
  (void)done;
}

}  // namespace

struct Program::Impl {
  std::string path;
  std::unique_ptr<Module> module;
  std::vector<std::string> methods;  // sorted

  Result<std::vector<EValue>> execute(const std::string& method, const std::vector<EValue>& inputs) {
    if (!std::binary_search(methods.begin(), methods.end(), method)) {
      return Status(ErrorCode::kNotFound, "program '" + path + "' has no method '" + method + "'");
    }
    // ExecuTorch reuses the previous call's inputs for any not given: refuse that.
    auto meta = module->method_meta(method);
    if (!meta.ok()) return from_executorch(meta.error(), "cannot read the signature of '" + method + "'");
    if (meta->num_inputs() != inputs.size()) {
      return Status(ErrorCode::kInvalidArgument, "method '" + method + "' of '" + path + "' takes " +
                                                     std::to_string(meta->num_inputs()) + " inputs, got " +
                                                     std::to_string(inputs.size()));
    }
    auto out = module->execute(method, inputs);
    if (!out.ok()) return from_executorch(out.error(), "running '" + method + "' of '" + path + "' failed");
    return std::move(out.get());
  }

  // The planned shape of each input is its upper bound (exact for static dims): a
  // clear error here instead of a failed resize deep in the runtime.
  Status check_input_shapes(const std::string& method, const std::vector<TensorView>& inputs) {
    auto meta = module->method_meta(method);
    if (!meta.ok()) return Status::Ok();  // execute() reports a missing method
    for (size_t i = 0; i < inputs.size() && i < meta->num_inputs(); ++i) {
      auto info = meta->input_tensor_meta(i);
      if (!info.ok()) {
        return Status(ErrorCode::kInvalidArgument,
                      "input " + std::to_string(i) + " of '" + method + "' is not a tensor input");
      }
      std::vector<int64_t> planned(info->sizes().begin(), info->sizes().end());
      bool fits = planned.size() == inputs[i].shape.size();
      for (size_t d = 0; fits && d < planned.size(); ++d) fits = inputs[i].shape[d] <= planned[d];
      if (!fits) {
        return Status(ErrorCode::kInvalidArgument, "input " + std::to_string(i) + " of '" + method +
                                                       "' has shape " + shape_string(inputs[i].shape) +
                                                       "; the program takes at most " + shape_string(planned));
      }
    }
    return Status::Ok();
  }

  Result<EValue> constant(const std::string& name) {
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<EValue> out, execute(name, {}));
    if (out.size() != 1) {
      return Status(ErrorCode::kInvalidProgram,
                    "constant method '" + name + "' of '" + path + "' returns " + std::to_string(out.size()) +
                        " values, expected 1");
    }
    return out[0];
  }
};

Program::Program(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Program::~Program() = default;

Result<std::unique_ptr<Program>> Program::load(const std::string& path, const ProgramOptions& options) {
  if (!std::ifstream(path, std::ios::binary).good()) {
    return Status(ErrorCode::kNotFound, "program file '" + path + "' does not exist or cannot be read");
  }
  share_packed_weights_once();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Mmap: weights stay in the page cache, shared by every Program over the same file.
  impl->module = std::make_unique<Module>(path, Module::LoadMode::Mmap, /*event_tracer=*/nullptr,
                                          /*memory_allocator=*/nullptr, /*temp_allocator=*/nullptr,
                                          options.share_memory_arenas);
  if (Error e = impl->module->load(); e != Error::Ok) {
    return from_executorch(e, "'" + path + "' is not a loadable ExecuTorch program");
  }
  auto names = impl->module->method_names();
  if (!names.ok()) return from_executorch(names.error(), "cannot list the methods of '" + path + "'");
  impl->methods.assign(names->begin(), names->end());
  std::sort(impl->methods.begin(), impl->methods.end());
  return std::unique_ptr<Program>(new Program(std::move(impl)));
}

const std::string& Program::path() const { return impl_->path; }
std::vector<std::string> Program::method_names() const { return impl_->methods; }
bool Program::has_method(const std::string& name) const {
  return std::binary_search(impl_->methods.begin(), impl_->methods.end(), name);
}

Result<int64_t> Program::constant_int(const std::string& name) {
  VOXTRAL_ASSIGN_OR_RETURN(EValue v, impl_->constant(name));
  if (v.isInt()) return v.toInt();
  if (v.isBool()) return static_cast<int64_t>(v.toBool());
  return Status(ErrorCode::kInvalidProgram, "constant '" + name + "' of '" + impl_->path + "' is not an integer");
}

Result<double> Program::constant_double(const std::string& name) {
  VOXTRAL_ASSIGN_OR_RETURN(EValue v, impl_->constant(name));
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  return Status(ErrorCode::kInvalidProgram, "constant '" + name + "' of '" + impl_->path + "' is not a number");
}

Result<int64_t> Program::planned_memory_bytes(const std::string& method) {
  if (!has_method(method)) {
    return Status(ErrorCode::kNotFound, "program '" + impl_->path + "' has no method '" + method + "'");
  }
  auto meta = impl_->module->method_meta(method);
  if (!meta.ok()) return from_executorch(meta.error(), "cannot read the plan of '" + method + "'");
  int64_t total = 0;
  for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
    auto size = meta->memory_planned_buffer_size(i);
    if (!size.ok()) return from_executorch(size.error(), "cannot read the plan of '" + method + "'");
    total += *size;
  }
  return total;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kInt64: return "int64";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

namespace {

et::aten::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kInt64: return et::aten::ScalarType::Long;
    case DType::kBFloat16: return et::aten::ScalarType::BFloat16;
    case DType::kFloat32: break;
  }
  return et::aten::ScalarType::Float;
}

}  // namespace

Result<std::vector<TensorView>> Program::execute(const std::string& method, const std::vector<TensorView>& inputs) {
  std::vector<et::extension::TensorPtr> tensors;
  std::vector<EValue> values;
  tensors.reserve(inputs.size());
  values.reserve(inputs.size());
  auto meta = impl_->module->method_meta(method);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorView& in = inputs[i];
    std::vector<et::aten::SizesType> sizes;
    for (int64_t d : in.shape) {
      if (d < 0 || d > std::numeric_limits<et::aten::SizesType>::max()) {
        return Status(ErrorCode::kInvalidArgument, "input " + std::to_string(i) + " of '" + method +
                                                       "' has an invalid shape " + shape_string(in.shape));
      }
      sizes.push_back(static_cast<et::aten::SizesType>(d));
    }
    if (in.data == nullptr && in.numel() > 0) {
      return Status(ErrorCode::kInvalidArgument, "input " + std::to_string(i) + " of '" + method + "' has no data");
    }
    if (meta.ok() && i < meta->num_inputs()) {
      auto info = meta->input_tensor_meta(i);
      if (info.ok() && info->scalar_type() != to_scalar_type(in.dtype)) {
        return Status(ErrorCode::kInvalidArgument, "input " + std::to_string(i) + " of '" + method + "' is " +
                                                       dtype_name(in.dtype) + "; the program takes dtype code " +
                                                       std::to_string(static_cast<int>(info->scalar_type())));
      }
    }
    // ExecuTorch only reads inputs; the const_cast is for its non-const API.
    tensors.push_back(et::extension::from_blob(const_cast<void*>(in.data), std::move(sizes), to_scalar_type(in.dtype)));
    values.emplace_back(*tensors.back());
  }
  VOXTRAL_RETURN_IF_ERROR(impl_->check_input_shapes(method, inputs));
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<EValue> out, impl_->execute(method, values));

  std::vector<TensorView> result;
  result.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].isTensor()) {
      return Status(ErrorCode::kInvalidProgram, "output " + std::to_string(i) + " of '" + method + "' is not a tensor");
    }
    const auto& tensor = out[i].toTensor();
    TensorView view;
    if (tensor.scalar_type() == et::aten::ScalarType::Float) {
      view.dtype = DType::kFloat32;
    } else if (tensor.scalar_type() == et::aten::ScalarType::Long) {
      view.dtype = DType::kInt64;
    } else if (tensor.scalar_type() == et::aten::ScalarType::BFloat16) {
      view.dtype = DType::kBFloat16;
    } else {
      return Status(ErrorCode::kInvalidProgram, "output " + std::to_string(i) + " of '" + method +
                                                    "' has unsupported dtype code " +
                                                    std::to_string(static_cast<int>(tensor.scalar_type())));
    }
    view.data = tensor.const_data_ptr();
    for (auto d : tensor.sizes()) view.shape.push_back(d);
    result.push_back(std::move(view));
  }
  return result;
}

Result<std::vector<FloatTensor>> Program::run(const std::string& method, const std::vector<FloatTensor>& inputs) {
  std::vector<TensorView> views;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const FloatTensor& in = inputs[i];
    TensorView view = TensorView::f32(in.data.data(), in.shape);
    if (view.numel() != static_cast<int64_t>(in.data.size())) {
      return Status(ErrorCode::kInvalidArgument,
                    "input " + std::to_string(i) + " of '" + method + "' has shape " + shape_string(in.shape) +
                        " but " + std::to_string(in.data.size()) + " values");
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
