// The backends wing: what each program backend implements behind voxtral::Program.
//
// The public Program (csrc/runtime/program.cpp) picks a backend by the file it loads and
// forwards every call to that backend's Program::Impl. Backends live in csrc/backends/<name>/
// and are the only files that include their runtime's headers (ExecuTorch, libtorch), so
// no backend type reaches the public headers and each runtime is linked privately.
//
//   executorch/  .pte programs on the ExecuTorch runtime (XNNPACK-delegated or portable),
//                plus our custom op kernels and ExecuTorch's thread pool
//   aoti/        .pt2 AOTInductor packages run by libtorch (CUDA, or the CPU in tests);
//                built when VOXTRAL_BACKENDS names aoti
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "voxtral/program.h"
#include "voxtral/status.h"

namespace voxtral {

// Program::Impl is the backend interface; Program::load returns one of its implementations.
// The contract of each call is Program's (voxtral/program.h); path and method list checks
// that are the same for every backend are done here, by Program, before forwarding.
struct Program::Impl {
  virtual ~Impl() = default;
  virtual const std::string& path() const = 0;
  virtual const std::vector<std::string>& method_names() const = 0;  // sorted
  virtual Result<int64_t> constant_int(const std::string& name) = 0;
  virtual Result<double> constant_double(const std::string& name) = 0;
  virtual Result<int64_t> planned_memory_bytes(const std::string& method) = 0;
  virtual Status prepare(const std::string& /*method*/) { return Status::Ok(); }  // loaded already
  virtual Result<std::vector<TensorView>> execute(const std::string& method, const std::vector<TensorView>& inputs) = 0;
};

namespace backend {

// "[1, 2, 3]", for messages.
std::string shape_string(const std::vector<int64_t>& shape);

// Each backend's loader. `path` names a readable file (Program::load checked it).
Result<std::unique_ptr<Program::Impl>> load_executorch(const std::string& path, const ProgramOptions& options);
#if VOXTRAL_BACKEND_AOTI
Result<std::unique_ptr<Program::Impl>> load_aoti(const std::string& path, const ProgramOptions& options);
#endif

}  // namespace backend
}  // namespace voxtral
