// Reading an exported speech-to-text program's constant methods into SttMetadata.
#pragma once

#include <vector>

#include "runtime/artifact.h"
#include "runtime/metadata_table.h"
#include "voxtral/program.h"
#include "voxtral/stt.h"

namespace voxtral::stt {

// The program format this build understands (src/voxtral_native/artifact.py), the same
// number as the artifact's manifest.
inline constexpr int kFormatVersion = kArtifactFormatVersion;
inline constexpr int kModelKindStt = 1;

// The table: every constant the export writes (export/metadata.py stt_metadata()).
const std::vector<MetadataField<SttMetadata>>& metadata_table();

// UnsupportedVersion for another format_version, InvalidProgram for a missing or
// inconsistent constant.
Result<SttMetadata> read_metadata(Program& program);

}  // namespace voxtral::stt
