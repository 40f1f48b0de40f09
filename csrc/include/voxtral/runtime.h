// The library itself: its version and the runtime's thread pool. The ground floor
// (csrc/runtime/) implements these; the umbrella header voxtral/voxtral.h includes this.
#pragma once

#include "voxtral/export.h"
#include "voxtral/status.h"

namespace voxtral {
// The library's version, "MAJOR.MINOR.PATCH" (same as the Python package).
VOXTRAL_API const char* version();

// Threads of the runtime's global pool (shared by every program in the process; the
// default is one per core). Resizing while a program runs is not allowed: call it
// before creating sessions. InvalidArgument outside [1, 1024].
VOXTRAL_API Status set_num_threads(int num_threads);
VOXTRAL_API int num_threads();
}  // namespace voxtral
