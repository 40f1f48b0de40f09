// libvoxtral: Mistral's Voxtral speech models on the ExecuTorch runtime.
//
//   #include <voxtral/voxtral.h>
//   auto program = voxtral::Program::load("model/stt.pte");
//   if (!program.ok()) { std::cerr << program.status().to_string() << "\n"; return 1; }
//
// CMake: find_package(voxtral REQUIRED); target_link_libraries(app PRIVATE voxtral::voxtral)
#pragma once

#include "voxtral/export.h"
#include "voxtral/log_mel.h"
#include "voxtral/program.h"
#include "voxtral/status.h"
#include "voxtral/stt.h"
#include "voxtral/tokenizer.h"

namespace voxtral {
// The library's version, "MAJOR.MINOR.PATCH" (same as the Python package).
VOXTRAL_API const char* version();

// Threads of the runtime's global pool (shared by every program in the process; the
// default is one per core). Resizing while a program runs is not allowed: call it
// before creating sessions. InvalidArgument outside [1, 1024].
VOXTRAL_API Status set_num_threads(int num_threads);
VOXTRAL_API int num_threads();
}  // namespace voxtral
