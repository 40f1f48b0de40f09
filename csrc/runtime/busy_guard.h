// Marks a session busy for one call that runs its program; a call that finds it busy fails
// with FailedPrecondition instead of racing on the program's state (sessions are one stream
// each; a runner is shared).
#pragma once

#include <atomic>

#include "voxtral/status.h"

namespace voxtral {

class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<bool>& busy) : busy_(busy), acquired_(!busy.exchange(true, std::memory_order_acquire)) {}
  ~BusyGuard() {
    if (acquired_) busy_.store(false, std::memory_order_release);
  }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

  Status status() const {
    return acquired_ ? Status::Ok()
                     : Status(ErrorCode::kFailedPrecondition,
                              "the session is in use by another thread: a session is one stream; use one session "
                              "per thread (a runner is shared)");
  }

 private:
  std::atomic<bool>& busy_;
  const bool acquired_;
};

}  // namespace voxtral
