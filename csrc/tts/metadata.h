// Reading an exported text-to-speech program's constant methods into TtsMetadata.
#pragma once

#include <vector>

#include "runtime/artifact.h"
#include "runtime/metadata_table.h"
#include "voxtral/program.h"
#include "voxtral/tts.h"

namespace voxtral::tts {

inline constexpr int kModelKindTts = 2;

// The table: every constant the export writes (export/metadata.py tts_metadata()).
const std::vector<MetadataField<TtsMetadata>>& metadata_table();

// UnsupportedVersion for another format_version, InvalidProgram for a missing or
// inconsistent constant or a missing method.
Result<TtsMetadata> read_metadata(Program& program);

}  // namespace voxtral::tts
