// voxtral/runtime.h, the version half (the thread pool belongs to the ExecuTorch backend:
// csrc/backends/executorch/threadpool.cpp).
#include "voxtral/runtime.h"

namespace voxtral {

const char* version() { return VOXTRAL_VERSION_STRING; }

}  // namespace voxtral
