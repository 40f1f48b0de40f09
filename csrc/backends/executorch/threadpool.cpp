// voxtral/runtime.h, the thread half: the size of ExecuTorch's global thread pool (XNNPACK
// and our op kernels run on it). Every build has the ExecuTorch backend, so this is the
// library's one thread pool; the AOTI backend's CPU kernels use libtorch's own threads.
//
// The wheel ships libexecutorch_threadpool.so but not its header
// (extension/threadpool/threadpool.h), so the two exported functions we call are
// declared here with their exact signatures.
#include <cstdint>
#include <string>

#include "voxtral/runtime.h"

namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace voxtral {

Status set_num_threads(int num_threads) {
  if (num_threads < 1 || num_threads > 1024) {
    return Status(ErrorCode::kInvalidArgument, "number of threads must be in [1, 1024], got " + std::to_string(num_threads));
  }
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool == nullptr || !pool->_unsafe_reset_threadpool(static_cast<uint32_t>(num_threads))) {
    return Status(ErrorCode::kInternal, "could not resize the thread pool to " + std::to_string(num_threads));
  }
  return Status::Ok();
}

int num_threads() {
  auto* pool = executorch::extension::threadpool::get_threadpool();
  return pool == nullptr ? 1 : static_cast<int>(pool->get_thread_count());
}

}  // namespace voxtral
