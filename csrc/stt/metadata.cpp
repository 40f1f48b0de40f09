#include "stt/metadata.h"

namespace voxtral::stt {

namespace {

Status read_int(Program& program, const char* name, int& out) {
  auto v = program.constant_int(name);
  if (!v.ok()) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' lacks constant '" + name + "' (" +
                                                  v.status().message() + "): not a speech-to-text program");
  }
  if (*v <= 0 || *v > (1 << 30)) {
    return Status(ErrorCode::kInvalidProgram,
                  "constant '" + std::string(name) + "' of '" + program.path() + "' is out of range: " + std::to_string(*v));
  }
  out = static_cast<int>(*v);
  return Status::Ok();
}

}  // namespace

Result<SttMetadata> read_metadata(Program& program) {
  SttMetadata m;
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "format_version", m.format_version));
  if (m.format_version != kFormatVersion) {
    return Status(ErrorCode::kUnsupportedVersion,
                  "'" + program.path() + "' has program format version " + std::to_string(m.format_version) +
                      "; this build of libvoxtral reads version " + std::to_string(kFormatVersion) +
                      " (re-export it with the matching voxtral-native)");
  }
  int kind = 0;
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "model_kind", kind));
  if (kind != kModelKindStt) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' is not a speech-to-text program");
  }
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "sample_rate", m.sample_rate));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "hop_length", m.hop_length));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "window_size", m.window_size));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "num_mel_bins", m.num_mel_bins));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "mel_frames_per_token", m.mel_frames_per_token));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "samples_per_token", m.samples_per_token));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "default_delay_ms", m.default_delay_ms));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "n_left_pad_tokens", m.n_left_pad_tokens));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "max_encoder_tokens", m.max_encoder_tokens));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "max_decoder_tokens", m.max_decoder_tokens));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "dim", m.dim));
  VOXTRAL_RETURN_IF_ERROR(read_int(program, "vocab_size", m.vocab_size));
  auto log_mel_max = program.constant_double("global_log_mel_max");
  if (!log_mel_max.ok()) return log_mel_max.status();
  m.global_log_mel_max = *log_mel_max;
  if (m.samples_per_token != m.mel_frames_per_token * m.hop_length) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "': samples_per_token != mel_frames_per_token * hop_length");
  }
  for (const char* method : {"encode", "decode"}) {
    if (!program.has_method(method)) {
      return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' has no method '" + method + "'");
    }
  }
  return m;
}

}  // namespace voxtral::stt
