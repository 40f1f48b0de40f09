// Streaming text-to-speech with Voxtral-4B-TTS-2603.
//
//   auto runner = voxtral::TtsRunner::load("artifacts/tts");   // Result<shared_ptr<TtsRunner>>
//   if (!runner.ok()) { std::cerr << runner.status().to_string() << "\n"; return 1; }
//   voxtral::TtsRequest request;
//   request.text = "Hello there.";
//   request.voice = "casual_male";                             // empty: default_voice()
//   auto session = (*runner)->new_session(request);           // Result<unique_ptr<TtsSession>>
//   while (!(*session)->done()) {
//     auto chunk = (*session)->next();                         // Result<AudioChunk>
//     if (!chunk.ok()) { ...; break; }
//     play(chunk->samples);                                    // 24 kHz mono float32
//   }
//
// A runner is immutable after load and shared by threads; a session is one request with its
// own program state (the LM's KV cache) and its own random generator, seeded once from the
// request. next() from a second thread while one runs fails with FailedPrecondition.
//
// The loop per utterance: the prompt [BOS] [BEGIN_AUDIO] [AUDIO]*N [NEXT_AUDIO_TEXT] text
// [REPEAT_AUDIO_TEXT] [BEGIN_AUDIO] [AUDIO] with the voice's N rows written over positions
// [2, 2+N) is prefilled; then per frame: the semantic code of the last hidden state (greedy,
// or drawn with a temperature), END_AUDIO stops (that frame is not emitted), 36 normal noise
// values, the acoustic step, and the frame's 37 codes fed back as the next LM step. The codec
// decodes on the program's schedule: the first chunk after first_chunk_frames (0.4 s), then
// every chunk_frames (2 s), each after codec_context_frames of left context, so the chunks
// join into exactly the samples of one whole-utterance decode. Long text is spoken as several
// utterances (split at sentence ends) with pause_frames of silence between them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "voxtral/export.h"
#include "voxtral/program.h"
#include "voxtral/status.h"
#include "voxtral/tokenizer.h"

namespace voxtral {

// What the exported program says about itself (constant methods), read once at load through
// one table (csrc/tts/metadata.cpp; metadata_entries() lists it).
struct TtsMetadata {
  int format_version = 0;
  int model_kind = 0;              // 2 = text-to-speech
  int sample_rate = 0;             // 24000
  int samples_per_frame = 0;       // 1920 = 80 ms
  int n_codebooks = 0;             // 37: 1 semantic + 36 acoustic
  int semantic_codebook_size = 0;  // 8192
  int acoustic_levels = 0;         // 21
  int n_special_codes = 0;         // 2: codes are shifted by this
  int empty_audio_code = 0;        // 0
  int end_audio_code = 0;          // 1
  int n_decoding_steps = 0;        // 7 Euler steps (inside `acoustic`)
  double cfg_alpha = 0;            // 1.2
  double noise_scale = 0;          // 1.0
  int dim = 0;                     // 3072
  int vocab_size = 0;              // 131072
  int semantic_logits_size = 0;    // 8320
  int max_positions = 0;           // LM positions per utterance (prompt + frames)
  int max_prompt_tokens = 0;       // tokens of one prefill (voice rows included)
  int max_codec_frames = 0;        // frames per codec call (context + chunk)
  int first_chunk_frames = 0;      // 5
  int chunk_frames = 0;            // 25
  int codec_context_frames = 0;    // 25
  int lm_input_is_bf16 = 0;        // 1: float inputs and outputs of the LM and acoustic methods are bf16
  // Slots of the LM's ring KV cache (position p in slot p % lm_cache_slots); 0 in programs
  // without text_prefill, whose runners prefill every prompt whole.
  int lm_cache_slots = 0;
};

struct TtsRequest {
  std::string text;   // UTF-8; numbers and symbols are read as written
  std::string voice;  // a preset voice name; empty = the runner's default_voice()
  uint64_t seed = 42;
  // Frames to emit at most over the whole request (80 ms each; END_AUDIO steps emit none).
  // 0 = no limit: each utterance runs until END_AUDIO or until its positions run out.
  int64_t max_frames = 0;
  // Temperature of the semantic code: 0 = greedy (argmax); > 0 draws from the softmax of
  // logits / temperature with the session's generator.
  float temperature = 0.f;
  int pause_frames = 3;  // silence between utterances of long text (240 ms), whole frames
};

// A piece of the session's audio: 24 kHz mono float32, samples [first_sample,
// first_sample + samples.size()) of the request's audio.
struct AudioChunk {
  std::vector<float> samples;
  int64_t first_sample = 0;
  bool last = false;  // no audio follows
};

class TtsSession;

// The first `n` normal values the generator of a session seeded with `seed` draws: the
// flow-matching noise of its frames, 36 per frame in order (with temperature 0, which draws
// nothing else). For tests and for reproducing a session elsewhere.
VOXTRAL_API std::vector<float> tts_noise(uint64_t seed, size_t n);

class VOXTRAL_API TtsRunner : public std::enable_shared_from_this<TtsRunner> {
 public:
  // Loads `model_dir` (model.pte, tekken.json, voices.f32 from `voxtral-native export tts`),
  // reads and checks the program's metadata and the voices. UnsupportedVersion for a program
  // of another format; InvalidProgram for a speech-to-text artifact or inconsistent files.
  static Result<std::shared_ptr<TtsRunner>> load(const std::string& model_dir);
  ~TtsRunner();

  // A new request. InvalidArgument for an unknown voice (the message lists the voices),
  // empty or whitespace-only text, text that is not UTF-8, max_frames < 0, a temperature
  // that is negative or not finite, pause_frames < 0. A closed session's Program (its state,
  // the weights in their runtime form) is kept for the next session.
  Result<std::unique_ptr<TtsSession>> new_session(const TtsRequest& request) const;

  std::vector<std::string> voices() const;  // sorted
  const std::string& default_voice() const;  // "neutral_female" where present, else the first voice
  // Memory each session plans when it loads the program (the LM's KV cache dominates).
  int64_t session_memory_bytes() const;
  const TtsMetadata& metadata() const;
  std::vector<MetadataEntry> metadata_entries() const;
  const Tokenizer& tokenizer() const;
  // The utterances a request's text is spoken as.
  Result<std::vector<std::string>> split_text(const std::string& text, const std::string& voice = "") const;

 private:
  struct Impl;
  explicit TtsRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class TtsSession;
};

class VOXTRAL_API TtsSession {
 public:
  ~TtsSession();

  // Runs the loop until the next chunk of audio is ready and returns it. After the chunk
  // marked last, done() is true and next() fails with FailedPrecondition.
  Result<AudioChunk> next();
  bool done() const;

  int64_t frames() const;          // frames emitted so far (pauses excluded)
  int64_t samples() const;         // samples returned so far (pauses included)
  int64_t utterances() const;      // utterances of the request
  // The 37 shifted codes of every frame emitted so far, frame after frame ([frames, 37]).
  std::vector<int64_t> codes() const;

 private:
  struct Impl;
  explicit TtsSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class TtsRunner;
};

}  // namespace voxtral
