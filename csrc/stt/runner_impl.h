// SttRunner's state, shared with SttSession (immutable after load).
#pragma once

#include <memory>
#include <string>

#include "runtime/idle_program.h"
#include "voxtral/program.h"
#include "voxtral/stt.h"
#include "voxtral/tokenizer.h"

namespace voxtral {

struct SttRunner::Impl {
  std::string program_path;
  // Loaded without state, kept while the runner lives: the weights stay loaded between
  // sessions (ProgramOptions::allocate_state).
  std::unique_ptr<Program> resident;
  mutable IdleProgram<> idle;  // the last closed session's Program (runtime/idle_program.h)
  SttMetadata metadata;
  std::unique_ptr<Tokenizer> tokenizer;
  int bos_id = 0;
  int pad_id = 0;
  int delay_ms = 0;
  int delay_tokens = 0;
  int prompt_len = 0;  // BOS + STREAMING_PAD x (left pad + delay)
  int speculative_tokens = 1;  // positions per speculative decode call (1: none)
  int batch_tokens = 1;        // audio tokens gathered per encode call in a stream
  int64_t session_memory_bytes = 0;  // planned memory of encode + decode
};

}  // namespace voxtral
