// Reading an exported speech-to-text program's constant methods into SttMetadata.
#pragma once

#include "voxtral/program.h"
#include "voxtral/stt.h"

namespace voxtral::stt {

// The program format this build understands (src/voxtral_native/export/metadata.py).
inline constexpr int kFormatVersion = 1;
inline constexpr int kModelKindStt = 1;

// UnsupportedVersion for another format_version, InvalidProgram for a missing or
// inconsistent constant.
Result<SttMetadata> read_metadata(Program& program);

}  // namespace voxtral::stt
