// The AOTI backend of Program: AOTInductor packages (.pt2) run by libtorch's
// AOTIModelPackageLoader, on the device the package was compiled for (CUDA, or the CPU in
// tests). The only file that sees libtorch's headers.
//
// The format (written by src/voxtral_native/export/aoti.py): one AOTInductor model per
// method, named after it, each with metadata
//   voxtral.methods    the package's methods, comma-separated
//   voxtral.constants  JSON {name: number}, served as constant methods (as ExecuTorch's are)
//   voxtral.state      JSON [{"name", "shape", "dtype"}]: state tensors the method takes after
//                      its own inputs, in order, and updates in place
//   voxtral.inputs     optional JSON [{"dtype", "shape"}] (shape entries null when dynamic):
//                      the method's own inputs, checked before a run
//
// Weights once, state per Program. A loader holds its model's weights (on the GPU, the
// expensive part), so loaders are shared process-wide: every Program of one package reuses
// them through a cache of weak references, and the last Program to go frees them (the
// runners keep a stateless one, ProgramOptions::allocate_state, so that sessions one after
// another do not load the weights again; VOXTRAL_VERBOSE=1 logs each load). What a
// stream changes (KV caches, conv context) is not in the model: it is the state tensors,
// which each Program allocates for itself, one per name, shared by the methods that name
// it (the TTS prefill and decode write one LM cache).
//
// CUDA graphs (builds against a CUDA libtorch): a step launches hundreds of small kernels,
// and launching them costs more CPU time than the GPU spends running them. So each Program
// runs its methods on a stream of its own and, the second time a method is called with the
// same input shapes, captures that call in a CUDA graph; later calls copy their inputs into
// the graph's input tensors and replay it (one launch). The graph reads the Program's own
// state tensors and the loader's weights in place, so it is per Program (per stream of
// audio) and costs only the activations of one call. Capture needs AOTInductor's
// single-threaded run (its multi-threaded one records events, which capture forbids), so
// the loaders are built that way and their uncaptured runs take turns. The environment
// variable VOXTRAL_CUDA_GRAPHS picks: 1 (default) capture, falling back to uncaptured runs
// with a warning when a method cannot be captured; 0 never; strict: a failed capture is an
// error (the GPU tests use it).
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#if VOXTRAL_AOTI_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/aoti/zip_directory.h"
#include "backends/program_impl.h"
#include "runtime/verbose.h"
#include "text/json.h"

namespace voxtral::backend {

namespace {

using text::JsonDocument;
using text::JsonValue;

// Model instances per loaded method. AOTInductor's model container is thread-safe (run()
// takes a shared lock and hands each caller a free model instance; run_single_threaded,
// which skips that, is not used), and its instances share the weights, so a second
// instance costs little and lets two sessions on two threads run one method at once
// instead of waiting for each other. More callers than instances wait for a free one.
constexpr size_t kRunnersPerMethod = 2;

// CUDA graphs (see the top of this file): how many shapes one Program captures per package
// (prefill lengths vary; each captured shape keeps its activations in the graph's pool).
constexpr size_t kMaxGraphsPerProgram = 16;

enum class GraphMode { kOff, kOn, kStrict };

// VOXTRAL_CUDA_GRAPHS, read once. Off in builds without CUDA.
GraphMode graph_mode() {
#if VOXTRAL_AOTI_CUDA
  static const GraphMode mode = [] {
    const char* v = std::getenv("VOXTRAL_CUDA_GRAPHS");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "1") == 0) return GraphMode::kOn;
    if (std::strcmp(v, "strict") == 0) return GraphMode::kStrict;
    if (std::strcmp(v, "0") != 0) {
      std::fprintf(stderr, "voxtral: VOXTRAL_CUDA_GRAPHS='%s' is not 0, 1 or strict; CUDA graphs are off\n", v);
    }
    return GraphMode::kOff;
  }();
  return mode;
#else
  return GraphMode::kOff;
#endif
}

Result<at::ScalarType> parse_dtype(std::string_view name, const std::string& where) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  if (name == "int64") return at::kLong;
  return Status(ErrorCode::kInvalidProgram, where + ": unsupported dtype '" + std::string(name) +
                                                "' (expected float32, bfloat16, float16 or int64)");
}

const char* scalar_type_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kLong: return "int64";
    default: return c10::toString(t);
  }
}

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kInt64: return at::kLong;
    case DType::kBFloat16: return at::kBFloat16;
    case DType::kFloat32: break;
  }
  return at::kFloat;
}

// The message of a libtorch exception, without the C++ backtrace c10::Error carries.
std::string what_of(const std::exception& e) {
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

struct StateSpec {
  std::string name;
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  int64_t bytes() const {
    int64_t n = static_cast<int64_t>(c10::elementSize(dtype));
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct InputSpec {
  at::ScalarType dtype = at::kFloat;
  std::vector<std::optional<int64_t>> shape;  // nullopt: a dynamic dimension
};

struct Constant {
  bool is_integer = false;
  int64_t int_value = 0;
  double double_value = 0;
};

// One method of a package, loaded once per process (the weights live in its loader).
struct LoadedMethod {
  std::string name;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  c10::Device device = c10::Device(c10::kCPU);
  std::vector<std::string> package_methods;  // voxtral.methods
  std::map<std::string, Constant> constants;
  std::vector<StateSpec> state;
  std::vector<InputSpec> inputs;  // empty when the package does not describe them
  int64_t num_inputs = -1;        // every input, state included (from the call spec); -1 if unknown
  // A single-threaded loader (for CUDA-graph capture) runs one call at a time: its callers
  // take turns on this mutex. Replays of captured graphs do not touch the loader.
  bool single_threaded = false;
  mutable std::mutex run_mutex;
};

Result<std::string> metadata_value(const std::unordered_map<std::string, std::string>& metadata, const char* key,
                                   const std::string& where) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    return Status(ErrorCode::kInvalidProgram, where + " has no '" + key +
                                                  "' metadata: not a package exported by voxtral-native");
  }
  return it->second;
}

Result<std::vector<int64_t>> parse_shape(const JsonValue* shape, const std::string& where) {
  if (shape == nullptr || !shape->is_array()) {
    return Status(ErrorCode::kInvalidProgram, where + ": shape is not a list");
  }
  std::vector<int64_t> dims;
  for (size_t i = 0; i < shape->size(); ++i) {
    int64_t d = 0;
    if (!shape->at(i).to_int64(&d) || d < 0) {
      return Status(ErrorCode::kInvalidProgram, where + ": shape entries must be sizes");
    }
    dims.push_back(d);
  }
  return dims;
}

Status parse_constants(const std::string& json, const std::string& where, std::map<std::string, Constant>* out) {
  VOXTRAL_ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::parse(json, where + " voxtral.constants"));
  const JsonValue& root = doc.root();
  if (!root.is_object()) return Status(ErrorCode::kInvalidProgram, where + ": voxtral.constants is not an object");
  for (size_t i = 0; i < root.size(); ++i) {
    const JsonValue& v = root.at(i);
    Constant c;
    if (v.is_bool()) {  // ExecuTorch's bool constants read as integers too
      c.is_integer = true;
      c.int_value = v.boolean() ? 1 : 0;
      c.double_value = static_cast<double>(c.int_value);
    } else if (v.is_number()) {
      c.is_integer = v.to_int64(&c.int_value);
      c.double_value = c.is_integer ? static_cast<double>(c.int_value) : v.to_double();
    } else {
      return Status(ErrorCode::kInvalidProgram,
                    where + ": constant '" + std::string(root.key(i)) + "' is " + v.type_name() + ", not a number");
    }
    (*out)[std::string(root.key(i))] = c;
  }
  return Status::Ok();
}

Status parse_state(const std::string& json, const std::string& where, std::vector<StateSpec>* out) {
  VOXTRAL_ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::parse(json, where + " voxtral.state"));
  const JsonValue& root = doc.root();
  if (!root.is_array()) return Status(ErrorCode::kInvalidProgram, where + ": voxtral.state is not a list");
  for (size_t i = 0; i < root.size(); ++i) {
    const JsonValue& entry = root.at(i);
    const std::string at = where + " state " + std::to_string(i);
    const JsonValue* name = entry.is_object() ? entry.find("name") : nullptr;
    const JsonValue* dtype = entry.is_object() ? entry.find("dtype") : nullptr;
    if (name == nullptr || !name->is_string() || dtype == nullptr || !dtype->is_string()) {
      return Status(ErrorCode::kInvalidProgram, at + ": expected {\"name\", \"shape\", \"dtype\"}");
    }
    StateSpec spec;
    spec.name = std::string(name->string());
    VOXTRAL_ASSIGN_OR_RETURN(spec.shape, parse_shape(entry.find("shape"), at));
    VOXTRAL_ASSIGN_OR_RETURN(spec.dtype, parse_dtype(dtype->string(), at));
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

Status parse_inputs(const std::string& json, const std::string& where, std::vector<InputSpec>* out) {
  VOXTRAL_ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::parse(json, where + " voxtral.inputs"));
  const JsonValue& root = doc.root();
  if (!root.is_array()) return Status(ErrorCode::kInvalidProgram, where + ": voxtral.inputs is not a list");
  for (size_t i = 0; i < root.size(); ++i) {
    const JsonValue& entry = root.at(i);
    const std::string at = where + " input " + std::to_string(i);
    const JsonValue* dtype = entry.is_object() ? entry.find("dtype") : nullptr;
    const JsonValue* shape = entry.is_object() ? entry.find("shape") : nullptr;
    if (dtype == nullptr || !dtype->is_string() || shape == nullptr || !shape->is_array()) {
      return Status(ErrorCode::kInvalidProgram, at + ": expected {\"dtype\", \"shape\"}");
    }
    InputSpec spec;
    VOXTRAL_ASSIGN_OR_RETURN(spec.dtype, parse_dtype(dtype->string(), at));
    for (size_t d = 0; d < shape->size(); ++d) {
      int64_t size = 0;
      if (shape->at(d).is_null()) {
        spec.shape.push_back(std::nullopt);
      } else if (shape->at(d).to_int64(&size) && size >= 0) {
        spec.shape.push_back(size);
      } else {
        return Status(ErrorCode::kInvalidProgram, at + ": shape entries must be sizes or null");
      }
    }
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

// Leaves of a pytree spec as torch.utils._pytree serializes it ({"type": null, ...} is a leaf).
int64_t count_leaves(const JsonValue& node) {
  if (!node.is_object()) return -1;
  const JsonValue* type = node.find("type");
  if (type != nullptr && type->is_null()) return 1;
  const JsonValue* children = node.find("children_spec");
  if (children == nullptr || !children->is_array()) return -1;
  int64_t total = 0;
  for (size_t i = 0; i < children->size(); ++i) {
    int64_t n = count_leaves(children->at(i));
    if (n < 0) return -1;
    total += n;
  }
  return total;
}

// How many tensors the model takes, read from its input spec ("[protocol, spec]"); -1 when
// the spec is not in the form we know (AOTInductor's own count check stays).
int64_t count_inputs(const std::string& in_spec) {
  auto doc = JsonDocument::parse(in_spec, "in_spec");
  if (!doc.ok()) return -1;
  const JsonValue& root = doc->root();
  if (!root.is_array() || root.size() != 2) return -1;
  return count_leaves(root.at(1));
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// A package's wrapper.so is built by whatever C++ compiler Inductor found at export time. A
// devtoolset-style GCC (the lent H200's /opt/gcc) links the parts of libstdc++ newer than the
// system's into the .so itself (locale ids, facet shims), so a wrapper.so resolves some
// locale symbols to its own copies and others to the system libstdc++; the first std::regex
// (libtorch's device-string parser, run in every model's constructor) then calls a facet
// through the wrong table and the process dies. It only happens when libstdc++ is not in the
// global symbol scope (Python does not link it), which is why LD_PRELOAD of it fixes it.
// Promoting the libstdc++ this process already uses to global scope does the same, once,
// before the first package loads. Harmless where the wrapper is built normally.
void put_libstdcxx_in_global_scope() {
#if defined(__linux__) && defined(__GLIBCXX__)
  static std::once_flag once;
  std::call_once(once, [] { (void)dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL); });
#endif
}

// Also as soon as libvoxtral loads: torch's own package loader, run in a process that imported
// voxtral_native first (the GPU tests compare against it), meets the same crash (the H200's
// test run of 2026-12-06 died in torch's load_package before any package of ours had loaded).
[[maybe_unused]] const bool kLibstdcxxGlobalAtLoad = (put_libstdcxx_in_global_scope(), true);

// Loads one method's model and reads its metadata. Every libtorch exception becomes a Status.
Result<std::shared_ptr<LoadedMethod>> load_method(const std::string& path, const std::string& method) {
  put_libstdcxx_in_global_scope();
  const auto started = std::chrono::steady_clock::now();
  const std::string where = "method '" + method + "' of '" + path + "'";
  auto loaded = std::make_shared<LoadedMethod>();
  loaded->name = method;
  std::unordered_map<std::string, std::string> metadata;
  loaded->single_threaded = graph_mode() != GraphMode::kOff;
  try {
    loaded->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        path, method, loaded->single_threaded, loaded->single_threaded ? 1 : kRunnersPerMethod);
    metadata = loaded->loader->get_metadata();
    auto call_spec = loaded->loader->get_call_spec();
    if (!call_spec.empty()) loaded->num_inputs = count_inputs(call_spec[0]);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidProgram, "cannot load " + where + ": " + what_of(e));
  }
  VOXTRAL_ASSIGN_OR_RETURN(std::string methods, metadata_value(metadata, "voxtral.methods", where));
  loaded->package_methods = split_commas(methods);
  VOXTRAL_ASSIGN_OR_RETURN(std::string constants, metadata_value(metadata, "voxtral.constants", where));
  VOXTRAL_RETURN_IF_ERROR(parse_constants(constants, where, &loaded->constants));
  VOXTRAL_ASSIGN_OR_RETURN(std::string state, metadata_value(metadata, "voxtral.state", where));
  VOXTRAL_RETURN_IF_ERROR(parse_state(state, where, &loaded->state));
  if (auto it = metadata.find("voxtral.inputs"); it != metadata.end()) {
    VOXTRAL_RETURN_IF_ERROR(parse_inputs(it->second, where, &loaded->inputs));
  }
  if (loaded->num_inputs >= 0 && !loaded->inputs.empty() &&
      loaded->num_inputs != static_cast<int64_t>(loaded->inputs.size() + loaded->state.size())) {
    return Status(ErrorCode::kInvalidProgram, where + " takes " + std::to_string(loaded->num_inputs) +
                                                  " tensors but its metadata lists " +
                                                  std::to_string(loaded->inputs.size()) + " inputs and " +
                                                  std::to_string(loaded->state.size()) + " state tensors");
  }
  auto device = metadata.find("AOTI_DEVICE_KEY");
  try {
    loaded->device = c10::Device(device == metadata.end() || device->second.empty() ? "cpu" : device->second);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidProgram, where + " names an unknown device: " + what_of(e));
  }
  if (verbose()) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "voxtral: loaded %s for %s in %.2f s\n", where.c_str(), loaded->device.str().c_str(), seconds);
  }
  return loaded;
}

// The process-wide cache of loaded methods: (package file, method) -> the loaded model,
// held weakly so the weights go with the last Program that uses them. A file rewritten in
// place (re-exported) has another size or time stamp and is loaded afresh; Programs of the
// old file keep theirs. Loading holds the lock: two sessions opening one package at once
// load it once, and loads are rare (one per session start).
class MethodCache {
 public:
  static MethodCache& instance() {
    static MethodCache* cache = new MethodCache();  // never destroyed: Programs may outlive statics
    return *cache;
  }

  Result<std::shared_ptr<LoadedMethod>> get(const std::string& path, const std::string& method) {
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    std::string key = (ec ? path : absolute.string()) + '\n' + method;
    struct stat st {};
    std::string stamp;
    if (::stat(path.c_str(), &st) == 0) {
      stamp = std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.stamp == stamp) {
      if (auto alive = it->second.method.lock()) return alive;
    }
    VOXTRAL_ASSIGN_OR_RETURN(std::shared_ptr<LoadedMethod> loaded, load_method(path, method));
    entries_[key] = Entry{stamp, loaded};
    return loaded;
  }

 private:
  struct Entry {
    std::string stamp;
    std::weak_ptr<LoadedMethod> method;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// The AOTInductor models a package holds (data/aotinductor/<name>/...), read from the zip's
// directory: the loader needs a model name before it can read any metadata.
// The models of the package, one per method: its data/aotinductor/<name>/... entries.
Result<std::vector<std::string>> package_models(const std::string& path) {
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<std::string> records, zip_entry_names(path));
  std::set<std::string> names;
  const std::string marker = "data/aotinductor/";
  for (const std::string& record : records) {
    // <top>/data/aotinductor/<name>/... (package_aoti's layout), or without the top folder
    const size_t slash = record.find('/');
    const size_t at = record.compare(0, marker.size(), marker) == 0 ? 0 : slash + 1;
    if (slash == std::string::npos || record.compare(at, marker.size(), marker) != 0) continue;
    const size_t start = at + marker.size();
    const size_t end = record.find('/', start);
    if (end != std::string::npos && end > start) names.insert(record.substr(start, end - start));
  }
  if (names.empty()) {
    return Status(ErrorCode::kInvalidProgram, "'" + path + "' holds no AOTInductor model");
  }
  return std::vector<std::string>(names.begin(), names.end());
}

#if VOXTRAL_AOTI_CUDA
// One captured call: the graph, the device tensors it reads its inputs from and those it
// writes its outputs to (declared after the graph, so they are freed before its pool).
struct CapturedCall {
  int uncaptured_calls = 0;  // calls with this key run without a graph so far
  bool failed = false;       // capture failed: always run uncaptured
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::vector<at::Tensor> inputs;
  std::vector<at::Tensor> outputs;
};

// A Program's CUDA side: the stream all its work runs on (state, copies, runs, replays) and
// its captured calls, by method and input dtypes and shapes.
struct CudaSide {
  explicit CudaSide(c10::Device device) : stream(c10::cuda::getStreamFromPool(false, device.index())) {}
  c10::cuda::CUDAStream stream;
  std::map<std::string, CapturedCall> calls;
};

// A capture that failed in strict mode (VOXTRAL_CUDA_GRAPHS=strict).
struct CaptureError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
#endif

class AotiProgram final : public Program::Impl {
 public:
  static Result<std::unique_ptr<Program::Impl>> load(const std::string& path, bool allocate_state);

  const std::string& path() const override { return path_; }
  const std::vector<std::string>& method_names() const override { return names_; }

  Result<int64_t> constant_int(const std::string& name) override {
    VOXTRAL_ASSIGN_OR_RETURN(const Constant* c, constant(name));
    if (!c->is_integer) {
      return Status(ErrorCode::kInvalidProgram, "constant '" + name + "' of '" + path_ + "' is not an integer");
    }
    return c->int_value;
  }

  Result<double> constant_double(const std::string& name) override {
    VOXTRAL_ASSIGN_OR_RETURN(const Constant* c, constant(name));
    return c->double_value;
  }

  // A method's state is what a Program allocates for it (activations come from libtorch's
  // allocator per call); constants plan nothing.
  Result<int64_t> planned_memory_bytes(const std::string& method) override {
    auto it = methods_.find(method);
    if (it == methods_.end()) return int64_t{0};
    int64_t total = 0;
    for (const StateSpec& s : it->second->state) total += s.bytes();
    return total;
  }

  Result<std::vector<TensorView>> execute(const std::string& method, const std::vector<TensorView>& inputs) override;

 private:
  Result<const Constant*> constant(const std::string& name) const {
    auto it = constants_.find(name);
    if (it == constants_.end()) {
      return Status(ErrorCode::kInvalidProgram, "'" + name + "' of '" + path_ + "' is a method, not a constant");
    }
    return &it->second;
  }
  Status check_inputs(const LoadedMethod& m, const std::vector<TensorView>& inputs) const;
  // Runs m without a graph (the loader's run, on the Program's stream where it has one).
  std::vector<at::Tensor> run_uncaptured(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs);
#if VOXTRAL_AOTI_CUDA
  // Runs m through its captured graph, capturing it on the second call with these shapes.
  std::vector<at::Tensor> run_cuda(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs);
  // Captures one call of m into c: "" when done, else why it could not be.
  std::string capture(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs, CapturedCall& c);
  std::unique_ptr<CudaSide> cuda_;  // CUDA packages only
#endif

  std::string path_;
  std::map<std::string, std::shared_ptr<LoadedMethod>> methods_;
  std::map<std::string, Constant> constants_;
  std::vector<std::string> names_;          // methods and constants, sorted
  bool has_state_ = true;                    // false: loaded with allocate_state = false
  std::map<std::string, at::Tensor> state_;  // this Program's own, by name
  std::vector<at::Tensor> outputs_;          // the last call's outputs, on the host
};

Result<std::unique_ptr<Program::Impl>> AotiProgram::load(const std::string& path, bool allocate_state) {
  auto program = std::unique_ptr<AotiProgram>(new AotiProgram());
  program->path_ = path;
  program->has_state_ = allocate_state;
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<std::string> models, package_models(path));
  for (const std::string& model : models) {
    VOXTRAL_ASSIGN_OR_RETURN(program->methods_[model], MethodCache::instance().get(path, model));
  }
  // Every model carries the package's metadata; the first one's is the package's.
  const LoadedMethod& first = *program->methods_.begin()->second;
  std::vector<std::string> listed = first.package_methods;
  std::sort(listed.begin(), listed.end());
  if (listed != models) {
    return Status(ErrorCode::kInvalidProgram, "'" + path + "' lists the methods " + joined(first.package_methods) +
                                                  " but holds the models " + joined(models));
  }
  program->constants_ = first.constants;
  for (const auto& [name, value] : program->constants_) {
    (void)value;
    if (program->methods_.count(name)) {
      return Status(ErrorCode::kInvalidProgram, "'" + path + "' has a method and a constant named '" + name + "'");
    }
    program->names_.push_back(name);
  }
  for (const auto& [name, method] : program->methods_) {
    (void)method;
    program->names_.push_back(name);
  }
  std::sort(program->names_.begin(), program->names_.end());

  // This Program's state: one tensor per name, zeros (as a new stream expects), on the
  // package's device. Methods naming one tensor must agree on what it is.
  std::map<std::string, const StateSpec*> specs;
  for (const auto& [name, method] : program->methods_) {
    if (method->device != first.device) {
      return Status(ErrorCode::kInvalidProgram, "'" + path + "' mixes devices: method '" + name + "' runs on " +
                                                    method->device.str() + ", '" + first.name + "' on " +
                                                    first.device.str());
    }
    for (const StateSpec& s : method->state) {
      auto [it, inserted] = specs.emplace(s.name, &s);
      if (!inserted && (it->second->shape != s.shape || it->second->dtype != s.dtype)) {
        return Status(ErrorCode::kInvalidProgram, "state '" + s.name + "' of '" + path + "' is " +
                                                      shape_string(it->second->shape) + " " +
                                                      scalar_type_name(it->second->dtype) + " in one method and " +
                                                      shape_string(s.shape) + " " + scalar_type_name(s.dtype) +
                                                      " in '" + name + "'");
      }
    }
  }
  try {
#if VOXTRAL_AOTI_CUDA
    // Everything of this Program runs on its own stream, the zeroing of its state included
    // (the pool's streams do not wait for the default stream).
    std::optional<c10::cuda::CUDAStreamGuard> on_stream;
    if (first.device.is_cuda()) {
      program->cuda_ = std::make_unique<CudaSide>(first.device);
      on_stream.emplace(program->cuda_->stream);
    }
#endif
    for (const auto& [name, spec] : specs) {
      if (!allocate_state) break;
      program->state_[name] = at::zeros(spec->shape, at::TensorOptions().dtype(spec->dtype).device(first.device));
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "cannot allocate the state of '" + path + "' on " + first.device.str() + ": " +
                                            what_of(e));
  }
  return std::unique_ptr<Program::Impl>(std::move(program));
}

Status AotiProgram::check_inputs(const LoadedMethod& m, const std::vector<TensorView>& inputs) const {
  const std::string where = "method '" + m.name + "' of '" + path_ + "'";
  if (m.num_inputs >= 0) {
    int64_t expected = m.num_inputs - static_cast<int64_t>(m.state.size());
    if (static_cast<int64_t>(inputs.size()) != expected) {
      return Status(ErrorCode::kInvalidArgument, where + " takes " + std::to_string(expected) + " inputs, got " +
                                                     std::to_string(inputs.size()));
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorView& in = inputs[i];
    const std::string at = "input " + std::to_string(i) + " of '" + m.name + "'";
    for (int64_t d : in.shape) {
      if (d < 0) return Status(ErrorCode::kInvalidArgument, at + " has an invalid shape " + shape_string(in.shape));
    }
    if (in.data == nullptr && in.numel() > 0) return Status(ErrorCode::kInvalidArgument, at + " has no data");
    if (i >= m.inputs.size()) continue;  // not described by the package: AOTInductor's checks only
    const InputSpec& spec = m.inputs[i];
    if (to_scalar_type(in.dtype) != spec.dtype) {
      return Status(ErrorCode::kInvalidArgument, at + " is " + dtype_name(in.dtype) + "; the program takes " +
                                                     scalar_type_name(spec.dtype));
    }
    bool fits = spec.shape.size() == in.shape.size();
    for (size_t d = 0; fits && d < spec.shape.size(); ++d) fits = !spec.shape[d] || *spec.shape[d] == in.shape[d];
    if (!fits) {
      std::string expected = "[";
      for (size_t d = 0; d < spec.shape.size(); ++d) {
        expected += (d ? ", " : "") + (spec.shape[d] ? std::to_string(*spec.shape[d]) : std::string("*"));
      }
      return Status(ErrorCode::kInvalidArgument,
                    at + " has shape " + shape_string(in.shape) + "; the program takes " + expected + "]");
    }
  }
  return Status::Ok();
}

Result<std::vector<TensorView>> AotiProgram::execute(const std::string& method, const std::vector<TensorView>& inputs) {
  auto found = methods_.find(method);
  if (found == methods_.end()) {
    return Status(ErrorCode::kInvalidArgument, "'" + method + "' of '" + path_ +
                                                   "' is a constant; read it with constant_int or constant_double");
  }
  const LoadedMethod& m = *found->second;
  if (!has_state_ && !m.state.empty()) {
    return Status(ErrorCode::kFailedPrecondition, "'" + path_ + "' was loaded without state (allocate_state = false): " +
                                                      "method '" + method + "' cannot run");
  }
  VOXTRAL_RETURN_IF_ERROR(check_inputs(m, inputs));
  outputs_.clear();  // the previous call's views end here
#if VOXTRAL_AOTI_CUDA
  // The copies of the outputs to the host below run (and wait) on this stream too.
  std::optional<c10::cuda::CUDAStreamGuard> on_stream;
  if (cuda_) on_stream.emplace(cuda_->stream);
#endif
  std::vector<at::Tensor> results;
  try {
    std::vector<at::Tensor> host_inputs;
    host_inputs.reserve(inputs.size());
    for (const TensorView& in : inputs) {
      // The model only reads its own inputs: the const_cast is for from_blob's signature.
      host_inputs.push_back(
          at::from_blob(const_cast<void*>(in.data), in.shape, at::TensorOptions().dtype(to_scalar_type(in.dtype))));
    }
#if VOXTRAL_AOTI_CUDA
    if (cuda_) {
      results = run_cuda(m, host_inputs);
    } else
#endif
    {
      results = run_uncaptured(m, host_inputs);
    }
#if VOXTRAL_AOTI_CUDA
  } catch (const CaptureError& e) {
    return Status(ErrorCode::kInternal, "running '" + method + "' of '" + path_ + "': " + e.what());
#endif
  } catch (const c10::OutOfMemoryError& e) {
    return Status(ErrorCode::kInternal, "running '" + method + "' of '" + path_ + "' ran out of memory: " + what_of(e));
  } catch (const std::exception& e) {
    // What fails inside a run is, in practice, AOTInductor's checks of its inputs.
    return Status(ErrorCode::kInvalidArgument, "running '" + method + "' of '" + path_ + "' failed: " + what_of(e));
  }

  std::vector<TensorView> views;
  views.reserve(results.size());
  try {
    for (size_t i = 0; i < results.size(); ++i) {
      at::Tensor host = results[i];
      if (!host.device().is_cpu()) host = host.to(at::kCPU);
      if (host.scalar_type() == at::kHalf) host = host.to(at::kFloat);  // TensorView has no float16
      // An output that is an input or a state tensor would change under the caller at the
      // next call of any method (or belong to the caller): the views get their own copy.
      bool aliases = false;
      const void* storage = host.storage().data();
      for (const auto& [name, s] : state_) aliases = aliases || (s.device().is_cpu() && s.storage().data() == storage);
      for (const TensorView& in : inputs) aliases = aliases || in.data == storage;
      host = aliases ? host.clone(at::MemoryFormat::Contiguous) : host.contiguous();
      TensorView view;
      switch (host.scalar_type()) {
        case at::kFloat: view.dtype = DType::kFloat32; break;
        case at::kLong: view.dtype = DType::kInt64; break;
        case at::kBFloat16: view.dtype = DType::kBFloat16; break;
        default:
          outputs_.clear();
          return Status(ErrorCode::kInvalidProgram, "output " + std::to_string(i) + " of '" + method + "' is " +
                                                        scalar_type_name(host.scalar_type()) +
                                                        " (expected float32, bfloat16, float16 or int64)");
      }
      view.data = host.const_data_ptr();
      view.shape.assign(host.sizes().begin(), host.sizes().end());
      outputs_.push_back(std::move(host));
      views.push_back(std::move(view));
    }
  } catch (const std::exception& e) {
    outputs_.clear();
    return Status(ErrorCode::kInternal, "cannot read the outputs of '" + method + "' of '" + path_ + "': " + what_of(e));
  }
  return views;
}

std::vector<at::Tensor> AotiProgram::run_uncaptured(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs) {
  std::vector<at::Tensor> args;
  args.reserve(host_inputs.size() + m.state.size());
  for (const at::Tensor& t : host_inputs) args.push_back(m.device.is_cpu() ? t : t.to(m.device));
  for (const StateSpec& s : m.state) args.push_back(state_.at(s.name));
  void* stream = nullptr;  // the current stream
#if VOXTRAL_AOTI_CUDA
  if (cuda_) stream = cuda_->stream.stream();
#endif
  std::unique_lock<std::mutex> lock(m.run_mutex, std::defer_lock);
  if (m.single_threaded) lock.lock();
  return m.loader->run(args, stream);
}

#if VOXTRAL_AOTI_CUDA
std::vector<at::Tensor> AotiProgram::run_cuda(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs) {
  if (graph_mode() == GraphMode::kOff) return run_uncaptured(m, host_inputs);
  std::string key = m.name;
  for (const at::Tensor& t : host_inputs) {
    key += '|';
    key += scalar_type_name(t.scalar_type());
    for (int64_t d : t.sizes()) key += ' ' + std::to_string(d);
  }
  auto it = cuda_->calls.find(key);
  if (it == cuda_->calls.end()) {
    if (cuda_->calls.size() >= kMaxGraphsPerProgram) return run_uncaptured(m, host_inputs);
    it = cuda_->calls.try_emplace(key).first;
  }
  CapturedCall& c = it->second;
  if (c.graph) {
    for (size_t i = 0; i < host_inputs.size(); ++i) c.inputs[i].copy_(host_inputs[i]);
  } else {
    // The first call runs uncaptured: it builds what a run creates once (cuBLAS and cuDNN
    // handles and plans, the workspace of this stream), which a capture cannot.
    if (c.failed || ++c.uncaptured_calls < 2) return run_uncaptured(m, host_inputs);
    const std::string error = capture(m, host_inputs, c);
    if (!error.empty()) {
      c.failed = true;
      if (graph_mode() == GraphMode::kStrict) throw CaptureError("cannot capture it in a CUDA graph: " + error);
      std::fprintf(stderr, "voxtral: '%s' of '%s' runs without a CUDA graph: %s\n", m.name.c_str(), path_.c_str(),
                   error.c_str());
      return run_uncaptured(m, host_inputs);
    }
  }
  c.graph->replay();  // a capture records the call without running it: the replay runs it
  return c.outputs;
}

std::string AotiProgram::capture(const LoadedMethod& m, const std::vector<at::Tensor>& host_inputs, CapturedCall& c) {
  c.inputs.clear();
  for (const at::Tensor& t : host_inputs) c.inputs.push_back(t.to(m.device));  // before the capture: not in its pool
  std::vector<at::Tensor> args = c.inputs;
  for (const StateSpec& s : m.state) args.push_back(state_.at(s.name));
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  std::vector<at::Tensor> outputs;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(m.run_mutex);  // graphs on: the loader is single-threaded
    try {
      // Thread-local: sessions on other threads keep running (and allocating) meanwhile.
      graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      try {
        outputs = m.loader->run(args, cuda_->stream.stream());
      } catch (const std::exception& e) {
        error = what_of(e);
      }
      graph->capture_end();  // also after a failed run: ends the stream's capture
    } catch (const std::exception& e) {
      if (error.empty()) error = what_of(e);
    }
  }
  if (!error.empty()) {
    (void)cudaGetLastError();  // the failed capture's error must not surface in a later call
    c.inputs.clear();
    return error;
  }
  c.outputs = std::move(outputs);
  c.graph = std::move(graph);
  return "";
}
#endif

}  // namespace

Result<std::unique_ptr<Program::Impl>> load_aoti(const std::string& path, const ProgramOptions& options) {
  // share_memory_arenas is not needed: state is shared by name already
  return AotiProgram::load(path, options.allocate_state);
}

}  // namespace voxtral::backend
