// A runner's idle Program: the last closed session's, taken by the next new session.
//
// Why: a session's Program is what keeps the weights in their runtime form. XNNPACK packs
// each weight when a method loads and frees the packed copy with the last Program using it;
// so without this, sessions run one after another (transcribe() twice, a server answering
// one request at a time) packed the weights again each time: ~8 s for the full speech-to-
// text model on 2 cores. On the GPU the kept Program also keeps its captured CUDA graphs.
//
// Reusing a Program without clearing its state is exact for these models: a ring KV cache
// slot is read only once this stream has written it (the mask is by the positions the slots
// hold, computed from the stream's own position), and the encoder's convolution context is
// ignored at the first token (models/stt.py). A session that failed inside its program is
// not reused. One idle Program at most: it holds one session's planned memory while idle.
#pragma once

#include <memory>
#include <mutex>

#include "voxtral/program.h"

namespace voxtral {

class IdleProgram {
 public:
  std::unique_ptr<Program> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::move(program_);
  }
  // Keeps `program` for the next session, or frees it when one is kept already.
  void put(std::unique_ptr<Program> program) {
    std::unique_ptr<Program> extra;
    std::lock_guard<std::mutex> lock(mutex_);
    if (program_) {
      extra = std::move(program);  // freed after the lock is released
    } else {
      program_ = std::move(program);
    }
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<Program> program_;
};

}  // namespace voxtral
