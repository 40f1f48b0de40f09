#include "stt/metadata.h"

namespace voxtral::stt {

const std::vector<MetadataField<SttMetadata>>& metadata_table() {
  using M = SttMetadata;
  using F = MetadataField<M>;
  static const std::vector<F> table = {
      {"format_version", &M::format_version},
      {"model_kind", &M::model_kind},
      // log-mel frontend
      {"sample_rate", &M::sample_rate},
      {"hop_length", &M::hop_length},
      {"window_size", &M::window_size},
      {"num_mel_bins", &M::num_mel_bins},
      {"global_log_mel_max", nullptr, &M::global_log_mel_max},
      // stream schedule
      {"mel_frames_per_token", &M::mel_frames_per_token},
      {"samples_per_token", &M::samples_per_token},
      {"encoder_frames_per_token", &M::encoder_frames_per_token},
      {"default_delay_ms", &M::default_delay_ms},
      {"max_delay_ms", &M::max_delay_ms},
      {"long_delay_ms", &M::long_delay_ms},
      {"n_left_pad_tokens", &M::n_left_pad_tokens, nullptr, 0},
      {"n_right_pad_tokens", &M::n_right_pad_tokens, nullptr, 0},
      // method shapes and state
      {"max_encoder_tokens", &M::max_encoder_tokens},
      {"max_decoder_tokens", &M::max_decoder_tokens},
      {"encoder_window", &M::encoder_window},
      {"decoder_window", &M::decoder_window},
      {"dim", &M::dim},
      {"vocab_size", &M::vocab_size},
      {"lm_input_is_bf16", &M::lm_input_is_bf16, nullptr, 0, 1, /*required=*/false, 0},
      {"max_verify_tokens", &M::max_verify_tokens, nullptr, 1, 64, /*required=*/false, 1},
  };
  return table;
}

Result<SttMetadata> read_metadata(Program& program) {
  // The version first: a program of another format may lack (or mean otherwise) the rest.
  auto version = program.constant_int("format_version");
  if (!version.ok()) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' has no format_version: not a voxtral-native program");
  }
  if (*version != kFormatVersion) {
    return Status(ErrorCode::kUnsupportedVersion,
                  "'" + program.path() + "' has program format version " + std::to_string(*version) +
                      "; this build of libvoxtral reads version " + std::to_string(kFormatVersion) +
                      " (re-export it with the matching voxtral-native)");
  }
  SttMetadata m;
  VOXTRAL_RETURN_IF_ERROR(read_metadata_table(program, metadata_table(), "speech-to-text", m));
  auto invalid = [&](const std::string& what) { return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "': " + what); };
  if (m.model_kind != kModelKindStt) return invalid("not a speech-to-text program (model_kind " + std::to_string(m.model_kind) + ")");
  if (m.samples_per_token != m.mel_frames_per_token * m.hop_length) {
    return invalid("samples_per_token != mel_frames_per_token * hop_length");
  }
  if (m.samples_per_token * 1000 % m.sample_rate != 0) return invalid("an audio token is not a whole number of ms");
  for (const char* method : {"encode", "decode"}) {
    if (!program.has_method(method)) return invalid(std::string("has no method '") + method + "'");
  }
  return m;
}

}  // namespace voxtral::stt
