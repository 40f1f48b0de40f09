// SttRunner: reads the artifact index, loads the program once to read and check its metadata, and the tokenizer.
#include <algorithm>

#include "runtime/artifact.h"
#include "stt/metadata.h"
#include "stt/runner_impl.h"

namespace voxtral {

SttRunner::SttRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SttRunner::~SttRunner() = default;

Result<std::shared_ptr<SttRunner>> SttRunner::load(const std::string& model_dir, const SttOptions& options) {
  VOXTRAL_ASSIGN_OR_RETURN(Artifact artifact, read_artifact(model_dir, "stt"));
  auto impl = std::make_unique<Impl>();
  VOXTRAL_ASSIGN_OR_RETURN(impl->program_path, artifact.file("program"));
  ProgramOptions resident;
  resident.allocate_state = false;  // the runner's own: weights and constants only
  VOXTRAL_ASSIGN_OR_RETURN(std::unique_ptr<Program> program, Program::load(impl->program_path, resident));
  VOXTRAL_ASSIGN_OR_RETURN(impl->metadata, stt::read_metadata(*program));
  for (const char* method : {"encode", "decode"}) {
    VOXTRAL_ASSIGN_OR_RETURN(int64_t bytes, program->planned_memory_bytes(method));
    impl->session_memory_bytes += bytes;
  }
  VOXTRAL_ASSIGN_OR_RETURN(const std::string tekken, artifact.file("tokenizer"));
  VOXTRAL_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::load(tekken));
  if (impl->tokenizer->vocab_size() != impl->metadata.vocab_size) {
    return Status(ErrorCode::kInvalidProgram, "tokenizer '" + tekken + "' has " +
                                                  std::to_string(impl->tokenizer->vocab_size()) +
                                                  " ids but the program's vocabulary has " +
                                                  std::to_string(impl->metadata.vocab_size));
  }
  VOXTRAL_ASSIGN_OR_RETURN(impl->bos_id, impl->tokenizer->id_of("<s>"));
  VOXTRAL_ASSIGN_OR_RETURN(impl->pad_id, impl->tokenizer->id_of("[STREAMING_PAD]"));

  const int token_ms = impl->metadata.samples_per_token * 1000 / impl->metadata.sample_rate;  // 80
  const int delay_ms = options.delay_ms == 0 ? impl->metadata.default_delay_ms : options.delay_ms;
  // The model's delays (mistral_common): multiples of one token up to max_delay_ms, or long_delay_ms.
  const SttMetadata& m = impl->metadata;
  const bool supported = delay_ms > 0 && delay_ms % token_ms == 0 && (delay_ms <= m.max_delay_ms || delay_ms == m.long_delay_ms);
  if (!supported) {
    return Status(ErrorCode::kInvalidArgument, "unsupported delay " + std::to_string(delay_ms) + " ms: use a multiple of " +
                                                   std::to_string(token_ms) + " ms from " + std::to_string(token_ms) +
                                                   " to " + std::to_string(m.max_delay_ms) + ", or " +
                                                   std::to_string(m.long_delay_ms));
  }
  impl->delay_ms = delay_ms;
  impl->delay_tokens = delay_ms / token_ms;
  if (options.speculative_tokens < -1) {
    return Status(ErrorCode::kInvalidArgument, "speculative_tokens must be -1 (the program's), 0 (off) or a count");
  }
  // Default 8 positions per speculative call: a PAD run is usually broken within that, and
  // a longer call only costs more output-head rows when the guess fails early.
  const int verify = std::min(m.max_verify_tokens, m.max_decoder_tokens);
  impl->speculative_tokens = std::clamp(options.speculative_tokens < 0 ? 8 : options.speculative_tokens, 1, verify);
  if (options.batch_tokens < 1 || options.batch_tokens > m.max_encoder_tokens) {
    return Status(ErrorCode::kInvalidArgument, "batch_tokens must be from 1 to the program's max_encoder_tokens (" +
                                                   std::to_string(m.max_encoder_tokens) + "), got " +
                                                   std::to_string(options.batch_tokens));
  }
  impl->batch_tokens = options.batch_tokens;
  impl->prompt_len = 1 + impl->metadata.n_left_pad_tokens + impl->delay_tokens;
  if (impl->prompt_len > impl->metadata.max_decoder_tokens) {
    return Status(ErrorCode::kInvalidArgument, "delay " + std::to_string(delay_ms) + " ms makes a prompt of " +
                                                   std::to_string(impl->prompt_len) + " positions; the program " +
                                                   "prefills at most " +
                                                   std::to_string(impl->metadata.max_decoder_tokens));
  }
  impl->resident = std::move(program);
  return std::shared_ptr<SttRunner>(new SttRunner(std::move(impl)));
}

const SttMetadata& SttRunner::metadata() const { return impl_->metadata; }
std::vector<MetadataEntry> SttRunner::metadata_entries() const {
  return metadata_table_entries(stt::metadata_table(), impl_->metadata);
}
const Tokenizer& SttRunner::tokenizer() const { return *impl_->tokenizer; }
int SttRunner::delay_ms() const { return impl_->delay_ms; }
int SttRunner::delay_tokens() const { return impl_->delay_tokens; }
int64_t SttRunner::session_memory_bytes() const { return impl_->session_memory_bytes; }

}  // namespace voxtral
