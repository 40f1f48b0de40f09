// TtsRunner's state, shared with TtsSession (immutable after load).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/idle_program.h"
#include "voxtral/program.h"
#include "voxtral/tokenizer.h"
#include "voxtral/tts.h"

namespace voxtral {

// A preset voice: `rows` LM embeddings [rows, dim] that replace the prompt's [AUDIO] tokens.
struct TtsVoice {
  int64_t first_row = 0;  // in TtsRunner::Impl::voice_rows
  int64_t rows = 0;
};

// Tokens a prompt adds around the text and the voice rows: BOS, BEGIN_AUDIO,
// NEXT_AUDIO_TEXT, REPEAT_AUDIO_TEXT, BEGIN_AUDIO, AUDIO.
inline constexpr int kTtsPromptExtraTokens = 6;

// Every preset voice of an artifact (voices.f32 and the manifest's index).
struct TtsVoices {
  std::map<std::string, TtsVoice> voices;
  std::vector<float> rows;  // [sum rows, dim] float32, every voice
  std::string default_voice;
};

struct TtsRunner::Impl {
  std::string program_path;
  // Loaded without state, kept while the runner lives: the weights stay loaded between
  // sessions (ProgramOptions::allocate_state).
  std::unique_ptr<Program> resident;
  // The last closed session's Program (runtime/idle_program.h), tagged with the voice whose
  // prompt prefix its LM cache holds (null: none).
  mutable IdleProgram<const TtsVoice*> idle;
  TtsMetadata metadata;
  // Optional methods (export_tts.py): text_prefill continues a cached voice prefix;
  // first_chunk_codec decodes an utterance's first chunk without the max_codec_frames call.
  bool has_text_prefill = false;
  bool has_first_chunk_codec = false;
  std::unique_ptr<Tokenizer> tokenizer;
  // control tokens of the prompt, looked up by name
  int bos_id = 0, audio_id = 0, begin_audio_id = 0, next_audio_text_id = 0, repeat_audio_text_id = 0;
  TtsVoices voices;
  int64_t session_memory_bytes = 0;
  // Utterances are packed to about this many text tokens (~250 characters of English): long
  // enough to phrase naturally, short enough that the model does not drift.
  static constexpr int kTargetUtteranceTokens = 64;

  Result<const TtsVoice*> voice(const std::string& name) const;
  int max_text_tokens(const TtsVoice& voice) const {
    return metadata.max_prompt_tokens - static_cast<int>(voice.rows) - kTtsPromptExtraTokens;
  }
  Result<std::vector<std::string>> split(const std::string& text, const TtsVoice& voice) const;
};

}  // namespace voxtral
