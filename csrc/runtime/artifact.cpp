#include "runtime/artifact.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "text/json.h"
#include "voxtral/program.h"

namespace voxtral {

namespace {

// The runtime backend (voxtral::backends()) that runs programs exported for each export
// backend: ExecuTorch with XNNPACK kernels runs both delegated and portable-only programs;
// AOTInductor packages for any device run on the aoti backend.
const char* runtime_backend(const std::string& exported_for) {
  if (exported_for == "xnnpack" || exported_for == "portable") return "xnnpack";
  if (exported_for == "cuda" || exported_for == "metal" || exported_for == "aoti-cpu") return "aoti";
  return nullptr;
}

// The export backends this build runs, for messages.
std::vector<std::string> backends_built() {
  std::vector<std::string> names;
  for (const char* b : {"xnnpack", "portable", "aoti-cpu", "cuda", "metal"}) {
    for (const std::string& built : backends()) {
      if (built == runtime_backend(b)) names.emplace_back(b);
    }
  }
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

const char* model_kind_name(const std::string& kind) {
  if (kind == "stt") return "speech-to-text";
  if (kind == "tts") return "text-to-speech";
  return "unknown";
}

Result<std::string> Artifact::file(const std::string& role) const {
  for (const auto& [r, name] : files) {
    if (r == role) return (std::filesystem::path(dir) / name).string();
  }
  return Status(ErrorCode::kNotFound, "the manifest of '" + dir + "' lists no " + role + " file");
}

Result<Artifact> read_artifact(const std::string& dir, const std::string& expected_kind) {
  namespace fs = std::filesystem;
  using text::JsonValue;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status(ErrorCode::kNotFound, "model directory '" + dir + "' does not exist");
  }
  const std::string path = (fs::path(dir) / kManifestFile).string();
  if (!fs::is_regular_file(path, ec)) {
    return Status(ErrorCode::kNotFound, "'" + dir + "' has no " + kManifestFile +
                                            ": not a model exported by voxtral-native (export it with "
                                            "`voxtral-native export`, or re-export one from an older version)");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Status(ErrorCode::kIoError, "cannot read '" + path + "'");
  VOXTRAL_ASSIGN_OR_RETURN(text::JsonDocument doc, text::JsonDocument::parse(std::move(bytes), path));
  const JsonValue& root = doc.root();
  auto invalid = [&](const std::string& what) { return Status(ErrorCode::kInvalidProgram, "'" + path + "': " + what); };
  if (!root.is_object()) return invalid("the top level must be an object");

  Artifact a;
  a.dir = dir;
  const JsonValue* version = root.find("format_version");
  int64_t v = 0;
  if (version == nullptr || !version->to_int64(&v)) {
    return Status(ErrorCode::kUnsupportedVersion,
                  "'" + path + "' has no format_version: written by an older voxtral-native (re-export the model)");
  }
  if (v != kArtifactFormatVersion) {
    return Status(ErrorCode::kUnsupportedVersion, "'" + dir + "' has artifact format version " + std::to_string(v) +
                                                      "; this build of libvoxtral reads version " +
                                                      std::to_string(kArtifactFormatVersion) +
                                                      " (re-export it with the matching voxtral-native)");
  }
  a.format_version = static_cast<int>(v);
  for (auto [key, out] : {std::pair<const char*, std::string*>{"kind", &a.kind}, {"backend", &a.backend}}) {
    const JsonValue* value = root.find(key);
    if (value == nullptr || !value->is_string()) return invalid(std::string("'") + key + "' must be a string");
    *out = std::string(value->string());
  }
  if (a.kind != expected_kind) {
    return invalid("this is a " + std::string(model_kind_name(a.kind)) + " model (kind '" + a.kind + "'); expected a " +
                   model_kind_name(expected_kind) + " model (kind '" + expected_kind + "')");
  }
  const char* needs = runtime_backend(a.backend);
  bool built = false;
  for (const std::string& b : backends()) built = built || (needs != nullptr && b == needs);
  if (!built) {
    std::string hint = needs != nullptr && std::string(needs) == "aoti"
                           ? " (rebuild with -DVOXTRAL_BACKENDS=xnnpack;aoti: README, Install)"
                           : "";
    return invalid("exported for " + a.backend + "; this build of libvoxtral runs " + join(backends_built()) + hint);
  }
  const JsonValue* files = root.find("files");
  if (files == nullptr || !files->is_object()) return invalid("'files' must be an object (role -> file name)");
  for (size_t i = 0; i < files->size(); ++i) {
    const JsonValue& name = files->at(i);
    if (!name.is_string()) return invalid("files." + std::string(files->key(i)) + " must be a string");
    const fs::path file(std::string(name.string()));
    if (file.empty() || file.is_absolute() || file.has_parent_path()) {
      return invalid("files." + std::string(files->key(i)) + " must be a file name inside the directory");
    }
    if (!fs::is_regular_file(fs::path(dir) / file, ec)) {
      return Status(ErrorCode::kNotFound, "'" + dir + "' lists " + std::string(files->key(i)) + " file '" +
                                              file.string() + "' but it is missing");
    }
    a.files.emplace_back(std::string(files->key(i)), file.string());
  }
  a.manifest_path = path;
  a.manifest = std::make_shared<const text::JsonDocument>(std::move(doc));
  return a;
}

}  // namespace voxtral
