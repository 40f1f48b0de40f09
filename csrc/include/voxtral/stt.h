// Streaming speech-to-text with Voxtral-Mini-4B-Realtime-2602.
//
//   auto runner = voxtral::SttRunner::load("artifacts/stt");    // Result<shared_ptr<SttRunner>>
//   if (!runner.ok()) { std::cerr << runner.status().to_string() << "\n"; return 1; }
//   auto session = (*runner)->new_session();                   // Result<unique_ptr<SttSession>>
//   while (read_audio(chunk)) {                                // 16 kHz mono float32, any size
//     (*session)->feed(chunk.data(), chunk.size());
//     for (const voxtral::TextPiece& p : (*session)->drain()) std::cout << p.text << std::flush;
//   }
//   (*session)->flush();                                       // end of input
//   for (const voxtral::TextPiece& p : (*session)->drain()) std::cout << p.text;
//
// A runner is immutable after load and shared by threads; each session is one stream
// with its own program state (KV caches, conv context): feed() / flush() from a second
// thread while one runs fail with FailedPrecondition instead of racing, and drain() may
// be called from another thread at any time. Offline transcription is a session fed
// everything, then flushed.
//
// The stream schedule is the reference one (Mistral's serving path): 32 tokens of silence
// (32 x 80 ms) before the audio, a prompt of BOS + STREAMING_PAD x (32 + delay tokens),
// then one decoder step per 80 ms of audio with the previous token fed back. Text lags the
// audio by the delay. A session runs as long as audio comes: neither EOS nor silence ends it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "voxtral/export.h"
#include "voxtral/program.h"
#include "voxtral/status.h"
#include "voxtral/tokenizer.h"

namespace voxtral {

struct SttOptions {
  // Transcription delay: how far text lags the audio. A multiple of 80 ms in [80, 1200],
  // or 2400. 0 = the program's default (480 ms for the released model).
  int delay_ms = 0;
  // Positions per speculative decode call: inside a run of one token ([STREAMING_PAD] above
  // all) with k audio embeddings waiting, one call over up to this many positions guesses
  // that the run goes on, and the greedy tokens it returns confirm the guesses or not (the
  // tokens are always exactly those of one step at a time). -1: 8 (at most the program's max_verify_tokens);
  // 0 or 1: off.
  int speculative_tokens = -1;
  // Audio tokens gathered before the encoder runs in a stream (1 to max_encoder_tokens):
  // one encoder call, and one speculative decoder call, then cover that many tokens, for
  // up to (batch_tokens - 1) x 80 ms of added latency. The text is the same for any value.
  int batch_tokens = 1;
};

// What the exported program says about itself (constant methods), read once at load
// through one table (csrc/stt/metadata.cpp; metadata_entries() lists it).
struct SttMetadata {
  int format_version = 0;
  int model_kind = 0;             // 1 = speech-to-text
  int sample_rate = 0;            // 16000
  int hop_length = 0;             // 160 samples per mel frame
  int window_size = 0;            // 400 (= n_fft)
  int num_mel_bins = 0;           // 128
  double global_log_mel_max = 0;  // 1.5
  int mel_frames_per_token = 0;   // 8
  int samples_per_token = 0;      // 1280 = 80 ms
  int encoder_frames_per_token = 0;  // 4 (encoder frames pooled per audio token)
  int default_delay_ms = 0;       // 480
  int max_delay_ms = 0;           // 1200: delays are multiples of 80 ms up to this ...
  int long_delay_ms = 0;          // 2400: ... or exactly this one
  int n_left_pad_tokens = 0;      // 32 tokens of silence before the audio
  int n_right_pad_tokens = 0;     // 11: silence after the audio, beyond the delay, at flush
  int max_encoder_tokens = 0;     // tokens per encode call
  int max_decoder_tokens = 0;     // positions per decode call
  int encoder_window = 0;         // 750 (encoder ring KV cache)
  int decoder_window = 0;         // 8192 (decoder ring KV cache)
  int dim = 0;                    // 3072
  int vocab_size = 0;             // 131072
  int lm_input_is_bf16 = 0;       // 1: the decoder's float inputs are bf16 (GPU programs)
  int max_verify_tokens = 1;      // decode returns the tokens of its last min(T, this) positions
};

// One decoder step's output: the token and, for text tokens, its text (never part of a
// UTF-8 character; control tokens have empty text).
struct TextPiece {
  std::string text;
  int token_id = 0;
  int64_t step = 0;     // 0 for the first output token, then one per 80 ms of audio
                        // (token_id -1: text held at the end of the stream, flushed)
  double time_s = 0.0;  // audio time this token closes: step * 80 ms (text lags by the delay)
};

class SttSession;

class VOXTRAL_API SttRunner : public std::enable_shared_from_this<SttRunner> {
 public:
  // Loads `model_dir` (model.pte + tekken.json from `voxtral-native export`), reads and
  // checks the program's metadata. UnsupportedVersion for a program of another format.
  static Result<std::shared_ptr<SttRunner>> load(const std::string& model_dir, const SttOptions& options = {});
  ~SttRunner();

  // A new stream. Each session owns a Program (its state); the weights are shared (the file
  // through the page cache, XNNPACK's packed copies through its cache). A closed session's
  // Program is kept for the next one, so sessions one after another do not load and pack
  // the weights again.
  Result<std::unique_ptr<SttSession>> new_session() const;

  // Memory each session plans when it loads its methods: their activations and state (the
  // ring KV caches dominate; the decoder's ring pages in as a stream reaches its window).
  int64_t session_memory_bytes() const;

  const SttMetadata& metadata() const;
  std::vector<MetadataEntry> metadata_entries() const;  // every constant, by name, in table order
  const Tokenizer& tokenizer() const;
  int delay_ms() const;
  int delay_tokens() const;

 private:
  struct Impl;
  explicit SttRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class SttSession;
};

class VOXTRAL_API SttSession {
 public:
  ~SttSession();

  // Appends 16 kHz mono samples and runs every encoder/decoder step they complete.
  // InvalidArgument for NaN/inf samples (nothing is consumed then); FailedPrecondition
  // after flush() or while another thread is inside feed() / flush().
  Status feed(const float* samples, size_t n);
  // Pieces produced since the last drain (possibly none).
  std::vector<TextPiece> drain();
  // End of input: pads as the reference does and decodes the rest. Idempotent.
  Status flush();

  int64_t samples_fed() const;  // real samples (padding excluded)
  int64_t steps() const;        // decoder steps that produced a token
  int64_t decode_calls() const;  // decode program calls (fewer than steps where speculation paid)

 private:
  struct Impl;
  explicit SttSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class SttRunner;
};

}  // namespace voxtral
