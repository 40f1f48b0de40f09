// The Tekken tokenizer (tekken.json): byte-level BPE with a regex pre-tokenizer, the
// same ids and text as mistral_common's Tekkenizer (tiktoken underneath).
//
//   auto loaded = voxtral::Tokenizer::load("model/tekken.json");  // Result<unique_ptr<Tokenizer>>
//   if (!loaded.ok()) { std::cerr << loaded.status().to_string() << "\n"; return 1; }
//   const voxtral::Tokenizer& tok = **loaded;
//   std::vector<int> ids = *tok.encode("Hello world", /*bos=*/true);  // {1, 22177, 4304}
//   std::string text = *tok.decode(ids);                                // "Hello world"
//   int pad = *tok.id_of("[STREAMING_PAD]");                            // 32 in Voxtral's files
//
//   voxtral::StreamDecoder stream(tok);        // one per stream: holds incomplete characters
//   for (int id : generated) std::cout << *stream.push(id);
//   std::cout << stream.flush();
//
// Ids. [0, num_special_tokens()) are special ("control") tokens: <unk> 0, <s> 1, </s> 2,
// [INST] 3, ..., and in Voxtral's files [AUDIO] 24, [BEGIN_AUDIO] 25, [STREAMING_PAD] 32,
// [STREAMING_WORD] 33; look them up with id_of(), never hard-code them. Text token
// id = BPE rank + num_special_tokens(); ranks at or past vocab_size() -
// num_special_tokens() are dropped from the file's vocab, as mistral_common does.
//
// A Tokenizer is immutable after load: share one between threads. A StreamDecoder is
// per stream and not thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "voxtral/export.h"
#include "voxtral/status.h"

namespace voxtral {

// What decode does with special tokens (mistral_common's SpecialTokenPolicy).
enum class SpecialTokenPolicy {
  kIgnore,  // drop them (the default)
  kKeep,    // write their names: "<s>", "[STREAMING_PAD]", "<SPECIAL_40>"
  kRaise,   // InvalidArgument if there is any
};

// The optional `audio` block of tekken.json (mistral_common's AudioConfig): the constants
// the speech runners need. Absent fields of the file stay unset.
struct VOXTRAL_API AudioConfig {
  int sampling_rate = 0;    // Hz: 16000 (speech-to-text), 24000 (text-to-speech)
  double frame_rate = 0.0;  // audio tokens per second: 12.5, i.e. one token per 80 ms
  // audio_encoding_config: the log-mel front end.
  int num_mel_bins = 0;  // 128
  int hop_length = 0;    // 160 samples
  int window_size = 0;   // 400 samples
  std::optional<double> chunk_length_s;  // pad audio to a multiple of this (not streaming)
  bool streaming = false;                // transcription_format == "streaming"
  // Streaming only (required there): text lags the audio by the delay.
  std::optional<double> transcription_delay_ms;      // 480 = 6 tokens of 80 ms
  std::optional<double> streaming_look_ahead_ms;     // 2.5
  std::optional<double> streaming_look_back_ms;      // 52.5
  std::optional<int> streaming_n_left_pad_tokens;    // 32
  // Text-to-speech: preset voice name -> number of audio tokens of its embedding.
  std::map<std::string, int> voice_num_audio_tokens;

  // Audio samples per token: int(sampling_rate // frame_rate) = 1280.
  int samples_per_token() const;
  // Tokens covering `delay_ms` (the file's transcription_delay_ms when unset), computed
  // as mistral_common's get_num_delay_tokens: 6 at 480 ms. 0 when no delay is known.
  int num_delay_tokens(std::optional<double> delay_ms = std::nullopt) const;
};

class VOXTRAL_API Tokenizer {
 public:
  // Reads tekken.json. NotFound if the file does not exist, IoError if it cannot be read,
  // InvalidProgram (naming the file and the problem) if it is not valid JSON, lacks a
  // field, has a field of the wrong type, an inconsistent vocab or special token list, or
  // a pre-tokenizer pattern outside the supported family (csrc/text/pretokenizer.h).
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& path);
  // The same from the file's contents; `source` names it in error messages.
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string json, const std::string& source = "<tekken.json>");
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of UTF-8 `text`, optionally with <s> first and </s> last.
  // InvalidArgument if `text` is not valid UTF-8 (naming the byte offset), or if bos/eos
  // are asked for and the file has no <s> / </s>.
  Result<std::vector<int>> encode(std::string_view text, bool bos = false, bool eos = false) const;
  // Token ids of any bytes: each ill-formed UTF-8 sequence is first replaced by U+FFFD,
  // exactly as Python's bytes.decode("utf-8", "replace") does (one U+FFFD per maximal
  // subpart), so encode_bytes(b) == Tekkenizer.encode(b.decode("utf-8", "replace")).
  // Lossy by design: Tekken models only ever saw tokenized text, never stray bytes.
  Result<std::vector<int>> encode_bytes(std::string_view bytes, bool bos = false, bool eos = false) const;

  // Text of `ids`, as mistral_common's Tekkenizer.decode: each run of consecutive text
  // tokens is decoded on its own with U+FFFD for ill-formed UTF-8 (a character split by a
  // special token becomes U+FFFD); special tokens follow `policy`. OutOfRange for an id
  // outside [0, vocab_size()); InvalidArgument for a special token under kRaise.
  Result<std::string> decode(const int* ids, size_t n, SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) const;
  Result<std::string> decode(const std::vector<int>& ids,
                             SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) const {
    return decode(ids.data(), ids.size(), policy);
  }

  // Raw bytes of a text token (possibly part of a UTF-8 character); empty for a special
  // token. OutOfRange outside [0, vocab_size()).
  Result<std::string_view> token_bytes(int id) const;
  // mistral_common's id_to_piece: a special token's name, or a text token decoded with U+FFFD.
  Result<std::string> piece(int id) const;

  // Id of the special token named `name` ("[STREAMING_PAD]", "<s>"). NotFound otherwise.
  Result<int> id_of(std::string_view name) const;
  // True for special tokens, ids in [0, num_special_tokens()) (decode treats them all
  // alike, whatever the file's is_control flag says, as mistral_common does).
  bool is_control(int id) const;

  int vocab_size() const;          // config.default_vocab_size: ids are < this (131072)
  int num_special_tokens() const;  // config.default_num_special_tokens (1000)
  int version() const;             // config.version "v7" -> 7
  const std::string& pattern() const;  // config.pattern
  const AudioConfig* audio() const;    // nullptr when the file has no audio block
  const std::string& source() const;   // the path it was loaded from

  // Unicode version of the character tables behind the pattern's \p{..} classes.
  static const char* unicode_version();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Incremental decode for one stream: push() returns the text that became complete, never
// part of a UTF-8 character; the bytes of an incomplete character wait for the next
// tokens. Bytes that can never complete a character come out as U+FFFD at once (one per
// maximal subpart, as Python's "replace"), so nothing is held forever.
//
// Special tokens: kIgnore makes them invisible (a character split by [STREAMING_PAD]
// still comes out whole), so the pieces plus flush() equal decode() of the text ids
// alone. kKeep writes the name after turning held bytes into U+FFFD, so the pieces plus
// flush() equal decode(ids, kKeep) exactly. kRaise refuses them (InvalidArgument).
//
// The decoder keeps a reference: the Tokenizer must outlive it.
class VOXTRAL_API StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore);

  // The new complete text after token `id` (often empty). OutOfRange for a bad id,
  // InvalidArgument for a special token under kRaise; the state is then unchanged.
  Result<std::string> push(int id);
  // Ends the stream: U+FFFD for held bytes (an incomplete character), or "".
  std::string flush();
  size_t pending_bytes() const { return pending_.size(); }  // 0..3

 private:
  const Tokenizer* tokenizer_;
  SpecialTokenPolicy policy_;
  std::string pending_;  // a valid but incomplete UTF-8 prefix
};

}  // namespace voxtral
