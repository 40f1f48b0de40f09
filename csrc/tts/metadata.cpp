#include "tts/metadata.h"

namespace voxtral::tts {

const std::vector<MetadataField<TtsMetadata>>& metadata_table() {
  using M = TtsMetadata;
  using F = MetadataField<M>;
  static const std::vector<F> table = {
      {"format_version", &M::format_version},
      {"model_kind", &M::model_kind},
      // audio out
      {"sample_rate", &M::sample_rate},
      {"samples_per_frame", &M::samples_per_frame},
      // codes
      {"n_codebooks", &M::n_codebooks, nullptr, 2, 64},
      {"semantic_codebook_size", &M::semantic_codebook_size},
      {"acoustic_levels", &M::acoustic_levels, nullptr, 2},
      {"n_special_codes", &M::n_special_codes, nullptr, 2, 2},
      {"empty_audio_code", &M::empty_audio_code, nullptr, 0, 0},
      {"end_audio_code", &M::end_audio_code, nullptr, 1, 1},
      // flow matching
      {"n_decoding_steps", &M::n_decoding_steps},
      {"cfg_alpha", nullptr, &M::cfg_alpha},
      {"noise_scale", nullptr, &M::noise_scale},
      // method shapes and state
      {"dim", &M::dim},
      {"vocab_size", &M::vocab_size},
      {"semantic_logits_size", &M::semantic_logits_size},
      {"max_positions", &M::max_positions},
      {"max_prompt_tokens", &M::max_prompt_tokens},
      {"max_codec_frames", &M::max_codec_frames},
      {"lm_cache_slots", &M::lm_cache_slots, nullptr, 1, int64_t{1} << 30, /*required=*/false, 0},
      // streaming schedule
      {"first_chunk_frames", &M::first_chunk_frames},
      {"chunk_frames", &M::chunk_frames},
      {"codec_context_frames", &M::codec_context_frames, nullptr, 0},
      {"lm_input_is_bf16", &M::lm_input_is_bf16, nullptr, 0, 1, /*required=*/false, 0},
  };
  return table;
}

Result<TtsMetadata> read_metadata(Program& program) {
  auto version = program.constant_int("format_version");
  if (!version.ok()) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' has no format_version: not a voxtral-native program");
  }
  if (*version != kArtifactFormatVersion) {
    return Status(ErrorCode::kUnsupportedVersion,
                  "'" + program.path() + "' has program format version " + std::to_string(*version) +
                      "; this build of libvoxtral reads version " + std::to_string(kArtifactFormatVersion) +
                      " (re-export it with the matching voxtral-native)");
  }
  auto kind = program.constant_int("model_kind");
  if (kind.ok() && *kind != kModelKindTts) {
    return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "' is not a text-to-speech program (model_kind " +
                                                  std::to_string(*kind) + ")");
  }
  TtsMetadata m;
  VOXTRAL_RETURN_IF_ERROR(read_metadata_table(program, metadata_table(), "text-to-speech", m));
  auto invalid = [&](const std::string& what) { return Status(ErrorCode::kInvalidProgram, "'" + program.path() + "': " + what); };
  if (m.semantic_logits_size < m.semantic_codebook_size + m.n_special_codes) return invalid("semantic_logits_size too small");
  if (m.max_codec_frames < m.codec_context_frames + m.chunk_frames || m.first_chunk_frames > m.chunk_frames) {
    return invalid("max_codec_frames cannot hold a chunk and its context");
  }
  if (m.max_prompt_tokens > m.max_positions) return invalid("max_prompt_tokens > max_positions");
  for (const char* method : {"prefill", "decode", "semantic_logits", "acoustic_step", "codec"}) {
    if (!program.has_method(method)) return invalid(std::string("has no method '") + method + "'");
  }
  // text_prefill and first_chunk_codec are optional (programs exported before them run without)
  if (program.has_method("text_prefill") && m.lm_cache_slots < m.max_prompt_tokens) {
    return invalid("has text_prefill but no valid lm_cache_slots");
  }
  return m;
}

}  // namespace voxtral::tts
