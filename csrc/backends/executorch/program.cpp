// The ExecuTorch backend of Program: .pte programs through ExecuTorch's Module API. The only
// file (with the op kernels beside it) that sees ExecuTorch's headers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/backend/options.h>

#include "backends/program_impl.h"
#include "runtime/verbose.h"

namespace voxtral::backend {

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

et::aten::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kInt64: return et::aten::ScalarType::Long;
    case DType::kBFloat16: return et::aten::ScalarType::BFloat16;
    case DType::kFloat32: break;
  }
  return et::aten::ScalarType::Float;
}

class ExecuTorchProgram final : public Program::Impl {
 public:
  ExecuTorchProgram(std::string path, std::unique_ptr<Module> module, std::vector<std::string> methods)
      : path_(std::move(path)), module_(std::move(module)), methods_(std::move(methods)) {}

  const std::string& path() const override { return path_; }
  const std::vector<std::string>& method_names() const override { return methods_; }

  Result<int64_t> constant_int(const std::string& name) override {
    VOXTRAL_ASSIGN_OR_RETURN(EValue v, constant(name));
    if (v.isInt()) return v.toInt();
    if (v.isBool()) return static_cast<int64_t>(v.toBool());
    return Status(ErrorCode::kInvalidProgram, "constant '" + name + "' of '" + path_ + "' is not an integer");
  }

  Result<double> constant_double(const std::string& name) override {
    VOXTRAL_ASSIGN_OR_RETURN(EValue v, constant(name));
    if (v.isDouble()) return v.toDouble();
    if (v.isInt()) return static_cast<double>(v.toInt());
    return Status(ErrorCode::kInvalidProgram, "constant '" + name + "' of '" + path_ + "' is not a number");
  }

  Result<int64_t> planned_memory_bytes(const std::string& method) override {
    auto meta = module_->method_meta(method);
    if (!meta.ok()) return from_executorch(meta.error(), "cannot read the plan of '" + method + "'");
    int64_t total = 0;
    for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
      auto size = meta->memory_planned_buffer_size(i);
      if (!size.ok()) return from_executorch(size.error(), "cannot read the plan of '" + method + "'");
      total += *size;
    }
    return total;
  }

  Status prepare(const std::string& method) override { return load(method, /*log=*/true); }
  Result<std::vector<TensorView>> execute(const std::string& method, const std::vector<TensorView>& inputs) override;

 private:
  Result<std::vector<EValue>> run_method(const std::string& method, const std::vector<EValue>& inputs);
  // Loads `method` if it is not yet (`log`: say so under VOXTRAL_VERBOSE).
  Status load(const std::string& method, bool log);
  Status check_input_shapes(const std::string& method, const std::vector<TensorView>& inputs);
  Result<EValue> constant(const std::string& name);

  std::string path_;
  std::unique_ptr<Module> module_;
  std::vector<std::string> methods_;  // sorted
};

Status ExecuTorchProgram::load(const std::string& method, bool log) {
  if (module_->is_method_loaded(method)) return Status::Ok();
  // Loading a method is where XNNPACK packs its weights: the slow part of a first call.
  const auto started = std::chrono::steady_clock::now();
  if (Error e = module_->load_method(method); e != Error::Ok) {
    return from_executorch(e, "cannot load method '" + method + "' of '" + path_ + "'");
  }
  if (verbose() && log) {  // constants (methods without inputs) are not worth a line
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "voxtral: loaded method '%s' of '%s' for cpu in %.2f s\n", method.c_str(), path_.c_str(),
                 seconds);
  }
  return Status::Ok();
}

Result<std::vector<EValue>> ExecuTorchProgram::run_method(const std::string& method, const std::vector<EValue>& inputs) {
  // ExecuTorch reuses the previous call's inputs for any not given: refuse that.
  auto meta = module_->method_meta(method);
  if (!meta.ok()) return from_executorch(meta.error(), "cannot read the signature of '" + method + "'");
  if (meta->num_inputs() != inputs.size()) {
    return Status(ErrorCode::kInvalidArgument, "method '" + method + "' of '" + path_ + "' takes " +
                                                   std::to_string(meta->num_inputs()) + " inputs, got " +
                                                   std::to_string(inputs.size()));
  }
  VOXTRAL_RETURN_IF_ERROR(load(method, /*log=*/!inputs.empty()));
  auto out = module_->execute(method, inputs);
  if (!out.ok()) return from_executorch(out.error(), "running '" + method + "' of '" + path_ + "' failed");
  return std::move(out.get());
}

// The planned shape of each input is its upper bound (exact for static dims): a
// clear error here instead of a failed resize deep in the runtime.
Status ExecuTorchProgram::check_input_shapes(const std::string& method, const std::vector<TensorView>& inputs) {
  auto meta = module_->method_meta(method);
  if (!meta.ok()) return Status::Ok();  // run_method() reports it
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

Result<EValue> ExecuTorchProgram::constant(const std::string& name) {
  if (!std::binary_search(methods_.begin(), methods_.end(), name)) {
    return Status(ErrorCode::kNotFound, "program '" + path_ + "' has no method '" + name + "'");
  }
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<EValue> out, run_method(name, {}));
  if (out.size() != 1) {
    return Status(ErrorCode::kInvalidProgram,
                  "constant method '" + name + "' of '" + path_ + "' returns " + std::to_string(out.size()) +
                      " values, expected 1");
  }
  return out[0];
}

Result<std::vector<TensorView>> ExecuTorchProgram::execute(const std::string& method,
                                                           const std::vector<TensorView>& inputs) {
  std::vector<et::extension::TensorPtr> tensors;
  std::vector<EValue> values;
  tensors.reserve(inputs.size());
  values.reserve(inputs.size());
  auto meta = module_->method_meta(method);
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
  VOXTRAL_RETURN_IF_ERROR(check_input_shapes(method, inputs));
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<EValue> out, run_method(method, values));

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

}  // namespace

Result<std::unique_ptr<Program::Impl>> load_executorch(const std::string& path, const ProgramOptions& options) {
  share_packed_weights_once();
  // Mmap: weights stay in the page cache, shared by every Program over the same file.
  auto module = std::make_unique<Module>(path, Module::LoadMode::Mmap, /*event_tracer=*/nullptr,
                                         /*memory_allocator=*/nullptr, /*temp_allocator=*/nullptr,
                                         options.share_memory_arenas);
  if (Error e = module->load(); e != Error::Ok) {
    return from_executorch(e, "'" + path + "' is not a loadable ExecuTorch program");
  }
  auto names = module->method_names();
  if (!names.ok()) return from_executorch(names.error(), "cannot list the methods of '" + path + "'");
  std::vector<std::string> methods(names->begin(), names->end());
  std::sort(methods.begin(), methods.end());
  return std::unique_ptr<Program::Impl>(new ExecuTorchProgram(path, std::move(module), std::move(methods)));
}

}  // namespace voxtral::backend
