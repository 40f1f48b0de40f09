// TtsRunner: reads the artifact index, the program's metadata, the tokenizer and the voices.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "runtime/artifact.h"
#include "text/utf8.h"
#include "tts/metadata.h"
#include "tts/runner_impl.h"
#include "tts/text_split.h"

namespace voxtral {

namespace {

// The manifest's voice index {"file": "voices.f32", "dim": D, "voices": {name: {"first_row",
// "rows"}}} and the float32 rows it points into.
Status read_voices(const Artifact& artifact, int dim, int max_prompt_tokens, TtsVoices& out) {
  using text::JsonValue;
  const std::string& where = artifact.manifest_path;
  auto invalid = [&](const std::string& what) { return Status(ErrorCode::kInvalidProgram, "'" + where + "': " + what); };
  const JsonValue* index = artifact.manifest->root().find("voices");
  if (index == nullptr || !index->is_object()) return invalid("'voices' must be an object (the voice index)");
  const JsonValue* d = index->find("dim");
  int64_t file_dim = 0;
  if (d == nullptr || !d->to_int64(&file_dim) || file_dim != dim) {
    return invalid("voices.dim must equal the program's dim " + std::to_string(dim));
  }
  const JsonValue* list = index->find("voices");
  if (list == nullptr || !list->is_object() || list->size() == 0) return invalid("voices.voices must list at least one voice");
  VOXTRAL_ASSIGN_OR_RETURN(const std::string path, artifact.file("voices"));
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec || bytes % (sizeof(float) * static_cast<size_t>(dim)) != 0) {
    return Status(ErrorCode::kInvalidProgram, "voice file '" + path + "' is not whole rows of " + std::to_string(dim) +
                                                  " float32 values (" + std::to_string(ec ? 0 : bytes) + " bytes)");
  }
  const int64_t total_rows = static_cast<int64_t>(bytes / (sizeof(float) * static_cast<size_t>(dim)));
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string name(list->key(i));
    const JsonValue& v = list->at(i);
    TtsVoice voice;
    const JsonValue* first = v.is_object() ? v.find("first_row") : nullptr;
    const JsonValue* rows = v.is_object() ? v.find("rows") : nullptr;
    if (first == nullptr || rows == nullptr || !first->to_int64(&voice.first_row) || !rows->to_int64(&voice.rows) ||
        voice.first_row < 0 || voice.rows < 1 || voice.first_row + voice.rows > total_rows) {
      return invalid("voice '" + name + "' has no valid first_row / rows within the " + std::to_string(total_rows) +
                     " rows of '" + path + "'");
    }
    if (voice.rows + kTtsPromptExtraTokens >= max_prompt_tokens) {
      return invalid("voice '" + name + "' has " + std::to_string(voice.rows) + " rows: no room for text in a prompt of " +
                     std::to_string(max_prompt_tokens) + " tokens");
    }
    out.voices[name] = voice;
  }
  out.rows.resize(static_cast<size_t>(total_rows) * static_cast<size_t>(dim));
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(out.rows.data()), static_cast<std::streamsize>(bytes))) {
    return Status(ErrorCode::kIoError, "cannot read voice file '" + path + "'");
  }
  out.default_voice = out.voices.count("neutral_female") ? "neutral_female" : out.voices.begin()->first;
  return Status::Ok();
}

}  // namespace

Result<const TtsVoice*> TtsRunner::Impl::voice(const std::string& name) const {
  const std::string& wanted = name.empty() ? voices.default_voice : name;
  auto it = voices.voices.find(wanted);
  if (it != voices.voices.end()) return &it->second;
  std::string names;
  for (const auto& [n, v] : voices.voices) names += (names.empty() ? "" : ", ") + n;
  return Status(ErrorCode::kInvalidArgument, "unknown voice '" + wanted + "'; this model has: " + names);
}

Result<std::vector<std::string>> TtsRunner::Impl::split(const std::string& text, const TtsVoice& voice) const {
  const int max_tokens = max_text_tokens(voice);
  auto count = [this](std::string_view piece) -> Result<int> {
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<int> ids, tokenizer->encode(piece));
    return static_cast<int>(ids.size());
  };
  // Before splitting, and in the TTS caller's terms: the tokenizer's own message points to
  // its encode_bytes, which a TTS caller has no way to reach.
  size_t bad = 0;
  if (!text::is_valid_utf8(text.data(), text.size(), &bad)) {
    return Status(ErrorCode::kInvalidArgument, "the text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  }
  VOXTRAL_ASSIGN_OR_RETURN(std::vector<std::string> parts,
                           tts::split_utterances(text, count, max_tokens, std::min(max_tokens, kTargetUtteranceTokens)));
  if (parts.empty()) return Status(ErrorCode::kInvalidArgument, "the text is empty (or only whitespace): nothing to say");
  return parts;
}

TtsRunner::TtsRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TtsRunner::~TtsRunner() = default;

Result<std::shared_ptr<TtsRunner>> TtsRunner::load(const std::string& model_dir) {
  VOXTRAL_ASSIGN_OR_RETURN(Artifact artifact, read_artifact(model_dir, "tts"));
  auto impl = std::make_unique<Impl>();
  VOXTRAL_ASSIGN_OR_RETURN(impl->program_path, artifact.file("program"));
  ProgramOptions options;
  options.share_memory_arenas = true;  // prefill and decode write one KV cache
  options.allocate_state = false;      // the runner's own: weights and constants only
  VOXTRAL_ASSIGN_OR_RETURN(std::unique_ptr<Program> program, Program::load(impl->program_path, options));
  VOXTRAL_ASSIGN_OR_RETURN(impl->metadata, tts::read_metadata(*program));
  impl->has_text_prefill = program->has_method("text_prefill");
  impl->has_first_chunk_codec = program->has_method("first_chunk_codec");
  // Methods share one arena: a session holds the largest method's plan (the KV cache among it).
  for (const std::string& method : program->method_names()) {
    auto bytes = program->planned_memory_bytes(method);
    if (bytes.ok()) impl->session_memory_bytes = std::max(impl->session_memory_bytes, *bytes);
  }
  VOXTRAL_ASSIGN_OR_RETURN(const std::string tekken, artifact.file("tokenizer"));
  VOXTRAL_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::load(tekken));
  if (impl->tokenizer->vocab_size() != impl->metadata.vocab_size) {
    return Status(ErrorCode::kInvalidProgram, "tokenizer '" + tekken + "' has " +
                                                  std::to_string(impl->tokenizer->vocab_size()) +
                                                  " ids but the program's vocabulary has " +
                                                  std::to_string(impl->metadata.vocab_size));
  }
  for (auto [name, id] : {std::pair<const char*, int*>{"<s>", &impl->bos_id},
                          {"[AUDIO]", &impl->audio_id},
                          {"[BEGIN_AUDIO]", &impl->begin_audio_id},
                          {"[NEXT_AUDIO_TEXT]", &impl->next_audio_text_id},
                          {"[REPEAT_AUDIO_TEXT]", &impl->repeat_audio_text_id}}) {
    auto found = impl->tokenizer->id_of(name);
    if (!found.ok()) {
      return Status(ErrorCode::kInvalidProgram, "tokenizer '" + tekken + "' has no " + name +
                                                    " token: not a text-to-speech tokenizer");
    }
    *id = *found;
  }
  VOXTRAL_RETURN_IF_ERROR(read_voices(artifact, impl->metadata.dim, impl->metadata.max_prompt_tokens, impl->voices));
  impl->resident = std::move(program);
  return std::shared_ptr<TtsRunner>(new TtsRunner(std::move(impl)));
}

std::vector<std::string> TtsRunner::voices() const {
  std::vector<std::string> names;
  for (const auto& [name, v] : impl_->voices.voices) names.push_back(name);
  return names;
}
const std::string& TtsRunner::default_voice() const { return impl_->voices.default_voice; }
int64_t TtsRunner::session_memory_bytes() const { return impl_->session_memory_bytes; }
const TtsMetadata& TtsRunner::metadata() const { return impl_->metadata; }
std::vector<MetadataEntry> TtsRunner::metadata_entries() const {
  return metadata_table_entries(tts::metadata_table(), impl_->metadata);
}
const Tokenizer& TtsRunner::tokenizer() const { return *impl_->tokenizer; }

Result<std::vector<std::string>> TtsRunner::split_text(const std::string& text, const std::string& voice) const {
  VOXTRAL_ASSIGN_OR_RETURN(const TtsVoice* v, impl_->voice(voice));
  return impl_->split(text, *v);
}

}  // namespace voxtral
