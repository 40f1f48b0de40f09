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
#include <variant>

#include "voxtral/program.h"

namespace voxtral {

// `Tag`: what the next session must know about the kept Program's state (text-to-speech: the
// voice whose prompt prefix its LM cache holds); nothing for speech-to-text.
template <typename Tag = std::monostate>
class IdleProgram {
 public:
  struct Kept {
    std::unique_ptr<Program> program;  // null when none is kept
    Tag tag{};
  };
  Kept take() {
    std::lock_guard<std::mutex> lock(mutex_);
    Kept out = std::move(kept_);
    kept_ = Kept{};
    return out;
  }
  // Keeps `program` for the next session, or frees it when one is kept already.
  void put(std::unique_ptr<Program> program, Tag tag = {}) {
    std::unique_ptr<Program> extra;
    std::lock_guard<std::mutex> lock(mutex_);
    if (kept_.program) {
      extra = std::move(program);  // freed after the lock is released
    } else {
      kept_ = Kept{std::move(program), tag};
    }
  }

 private:
  std::mutex mutex_;
  Kept kept_;
};

}  // namespace voxtral
