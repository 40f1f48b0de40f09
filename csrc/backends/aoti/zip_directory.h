// The entry names of a zip archive, read from its central directory (zip64 included): how
// the AOTI backend finds the models (methods) of a .pt2 package without libtorch's
// PyTorchStreamReader, whose constructor crashed inside libtorch 2.11 on the H200 (in its
// archive checks, before any entry was read; benchmarks/results/gpu_h200.md). Only names
// are read: no entry is decompressed.
#pragma once

#include <string>
#include <vector>

#include "voxtral/status.h"

namespace voxtral::backend {

Result<std::vector<std::string>> zip_entry_names(const std::string& path);

}  // namespace voxtral::backend
