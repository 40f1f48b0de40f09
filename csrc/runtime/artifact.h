// The artifact index: manifest.json, written by `voxtral-native export` beside the files it
// lists, is what says what a model directory is. Runners read it first and open only the
// files it names (the Python side reads the same file in src/voxtral_native/artifact.py).
//
//   {"format_version": 1, "kind": "stt", "backend": "xnnpack",
//    "files": {"program": "model.pte", "tokenizer": "tekken.json"}, "options": {...}, ...}
//
// Model constants (shapes, the stream schedule) are not here: they live in the program's
// constant methods, so a program cannot disagree with itself.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/json.h"
#include "voxtral/status.h"

namespace voxtral {

// The artifact layout this build reads; the program's `format_version` constant carries the
// same number (export writes both from one place).
inline constexpr int kArtifactFormatVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";

struct Artifact {
  std::string dir;
  int format_version = 0;
  std::string kind;     // "stt" (speech-to-text) or "tts" (text-to-speech)
  std::string backend;  // what the program was lowered for: "xnnpack", "portable", ...
  std::vector<std::pair<std::string, std::string>> files;  // role -> file name in `dir`
  std::shared_ptr<const text::JsonDocument> manifest;     // the whole file (kind-specific entries)
  std::string manifest_path;

  // Path of the file listed under `role` ("program", "tokenizer", ...); NotFound if the
  // manifest lists none.
  Result<std::string> file(const std::string& role) const;
};

// "speech-to-text" for "stt", "text-to-speech" for "tts" (for messages).
const char* model_kind_name(const std::string& kind);

// Reads and checks `dir`/manifest.json: NotFound for a missing directory, manifest or listed
// file; UnsupportedVersion for another format_version; InvalidProgram for a manifest that is
// not valid JSON, an artifact of another kind than `expected_kind`, or a backend this build
// does not run.
Result<Artifact> read_artifact(const std::string& dir, const std::string& expected_kind);

}  // namespace voxtral
