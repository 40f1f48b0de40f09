// One exported program behind a seam that hides the backend: an ExecuTorch program (.pte,
// run on the CPU) or an AOTInductor package (.pt2, run by libtorch on CUDA or the CPU, in
// builds with the aoti backend). Program::load picks the backend by the file.
//
//   auto program = voxtral::Program::load("encoder.pte");        // Result<unique_ptr<Program>>
//   if (!program.ok()) return program.status();
//   auto version = (*program)->constant_int("format_version");  // Result<int64_t>
//   auto out = (*program)->run("forward", {{{1, 8, 128}, mel}}); // Result<vector<FloatTensor>>
//
// Exported programs carry their shapes and constants as constant methods (methods with
// no inputs returning one scalar); runners read them here instead of hard-coding them.
//
// A Program is not thread-safe: methods keep mutable state (KV caches) inside the
// program, so each stream gets its own Program. The weights are loaded once whichever
// the backend: .pte files are memory-mapped (shared by the OS page cache), and the models
// of a .pt2 package are loaded once per process and shared by its Programs, each of which
// owns only its state tensors (they stay loaded while any Program of the package lives:
// the runners keep one without state, ProgramOptions::allocate_state).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "voxtral/export.h"
#include "voxtral/status.h"

namespace voxtral {

// A dense, row-major float32 tensor. shape {} holds one scalar.
struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // product(shape) values
};

enum class DType : int { kFloat32 = 0, kInt64 = 1, kBFloat16 = 2 };
VOXTRAL_API const char* dtype_name(DType dtype);

// A tensor that does not own its data: inputs borrow the caller's memory, outputs
// point into the program's memory.
struct TensorView {
  DType dtype = DType::kFloat32;
  const void* data = nullptr;
  std::vector<int64_t> shape;

  static TensorView f32(const float* data, std::vector<int64_t> shape) { return {DType::kFloat32, data, std::move(shape)}; }
  static TensorView i64(const int64_t* data, std::vector<int64_t> shape) { return {DType::kInt64, data, std::move(shape)}; }
  // bf16 values as their raw 16 bits (voxtral/bf16.h converts).
  static TensorView bf16(const uint16_t* data, std::vector<int64_t> shape) { return {DType::kBFloat16, data, std::move(shape)}; }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  const float* f32() const { return static_cast<const float*>(data); }
  const int64_t* i64() const { return static_cast<const int64_t*>(data); }
  const uint16_t* bf16() const { return static_cast<const uint16_t*>(data); }
};

// One constant of a model's metadata as a runner lists it (SttRunner::metadata_entries()):
// the constant method's name and its value.
struct MetadataEntry {
  std::string name;
  bool is_integer = true;
  int64_t int_value = 0;    // integer constants
  double double_value = 0;  // every constant, as a number
};

// The program backends this build of libvoxtral runs, e.g. {"xnnpack"} or {"xnnpack", "aoti"}
// ("xnnpack": ExecuTorch programs, XNNPACK-delegated or portable; "aoti": AOTInductor
// packages). Chosen at build time with -DVOXTRAL_BACKENDS.
VOXTRAL_API std::vector<std::string> backends();

struct ProgramOptions {
  // All methods share one activation arena and one arena of shared mutable buffers: needed
  // by programs whose methods share state (the TTS program's prefill and decode write one
  // KV cache). An output is then valid only until the next call of any method.
  // AOTInductor packages ignore it: their state tensors are shared by name already.
  bool share_memory_arenas = false;
  // false: a Program that holds the loaded weights and answers constants and planned sizes,
  // but owns no state, so its stateful methods cannot run (FailedPrecondition). The runners
  // keep one for their lifetime: a package's models are freed with the last Program using
  // them, so without it sessions run one after another would each load the weights again
  // (2.6 s for the TTS package on an H100). ExecuTorch programs load methods when first run
  // and keep their weights in the page cache: there it changes nothing.
  bool allocate_state = true;
};

class VOXTRAL_API Program {
 public:
  // Memory-maps and verifies the program (.pte), or loads the package's models (.pt2, once per
  // process) and allocates this Program's state. NotFound if the file does not exist,
  // InvalidProgram if it is not a loadable program or one of a backend this build lacks.
  static Result<std::unique_ptr<Program>> load(const std::string& path, const ProgramOptions& options = {});
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  const std::string& path() const;
  std::vector<std::string> method_names() const;  // sorted
  bool has_method(const std::string& name) const;

  // Constant methods: NotFound if absent, InvalidProgram if of another type.
  Result<int64_t> constant_int(const std::string& name);
  Result<double> constant_double(const std::string& name);

  // Bytes of memory the runtime plans for `method` when it loads (activations and, for the
  // stateful methods, their KV caches and other state): what each Program loading the
  // method allocates. For an AOTInductor package: the method's state tensors (activations
  // come from libtorch's allocator per call). NotFound if there is no such method.
  Result<int64_t> planned_memory_bytes(const std::string& method);

  // Loads `method` now rather than at its first call (on XNNPACK, loading a method packs
  // or looks up its weights and allocates its memory plan: seconds for the full models), so
  // a session can be made ready before its audio arrives. NotFound if there is no such method.
  Status prepare(const std::string& method);

  // Runs `method` on float32 inputs; returns its outputs as float32 tensors
  // (scalar outputs become shape {}). InvalidArgument when the inputs do not match
  // the method's signature.
  Result<std::vector<FloatTensor>> run(const std::string& method, const std::vector<FloatTensor>& inputs);

  // The zero-copy form used by the runners: inputs are read in place (float32, bf16 or int64,
  // checked against the method's signature); outputs are views into the program's
  // memory, valid until the next execute/run on this Program.
  Result<std::vector<TensorView>> execute(const std::string& method, const std::vector<TensorView>& inputs);

  // The backend behind this Program: an internal interface (csrc/backends/program_impl.h),
  // opaque to users.
  struct Impl;

 private:
  explicit Program(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace voxtral
