// A model's metadata table: one row per constant method of its program (name, member of the
// runner's metadata struct, range, required or default). One table per model kind reads and
// checks the program's constants at load and lists them for the bindings, so the field list
// lives in one place on the C++ side (the export side writes the same names:
// src/voxtral_native/export/metadata.py; a test holds the two equal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "voxtral/program.h"
#include "voxtral/status.h"

namespace voxtral {

template <typename Metadata>
struct MetadataField {
  const char* name;
  int Metadata::*int_member = nullptr;        // integer constants
  double Metadata::*double_member = nullptr;  // float constants
  int64_t min = 1;                            // allowed range of integer constants
  int64_t max = int64_t{1} << 30;
  bool required = true;
  int default_value = 0;  // when not required and the program lacks the constant
};

template <typename Metadata>
Status read_metadata_table(Program& program, const std::vector<MetadataField<Metadata>>& table, const char* what,
                           Metadata& out) {
  for (const MetadataField<Metadata>& f : table) {
    if (f.double_member != nullptr) {
      auto v = program.constant_double(f.name);
      if (!v.ok()) {
        return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' lacks constant '" + f.name + "' (" +
                                                      v.status().message() + "): not a " + what + " program");
      }
      out.*f.double_member = *v;
      continue;
    }
    auto v = program.constant_int(f.name);
    if (!v.ok() && v.status().code() == ErrorCode::kNotFound && !f.required) {
      out.*f.int_member = f.default_value;
      continue;
    }
    if (!v.ok()) {
      return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' lacks constant '" + f.name + "' (" +
                                                    v.status().message() + "): not a " + what + " program");
    }
    if (*v < f.min || *v > f.max) {
      return Status(ErrorCode::kInvalidProgram, "constant '" + std::string(f.name) + "' of '" + program.path() +
                                                    "' is out of range: " + std::to_string(*v) + " (expected " +
                                                    std::to_string(f.min) + ".." + std::to_string(f.max) + ")");
    }
    out.*f.int_member = static_cast<int>(*v);
  }
  return Status::Ok();
}

// The rows with their values, in table order (for the bindings' dict).
template <typename Metadata>
std::vector<MetadataEntry> metadata_table_entries(const std::vector<MetadataField<Metadata>>& table,
                                                  const Metadata& m) {
  std::vector<MetadataEntry> out;
  out.reserve(table.size());
  for (const MetadataField<Metadata>& f : table) {
    if (f.double_member != nullptr) {
      out.push_back({f.name, false, 0, m.*f.double_member});
    } else {
      out.push_back({f.name, true, m.*f.int_member, static_cast<double>(m.*f.int_member)});
    }
  }
  return out;
}

}  // namespace voxtral
