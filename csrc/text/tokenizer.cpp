// voxtral::Tokenizer: tekken.json loading, encode (pre-tokenizer + BPE), decode, and
// StreamDecoder. Semantics follow mistral_common's tekken.py (see tokenizer.h).
#include "voxtral/tokenizer.h"

#include <cmath>
#include <fstream>
#include <sys/stat.h>
#include <unordered_map>

#include "text/base64.h"
#include "text/bpe.h"
#include "text/json.h"
#include "text/pretokenizer.h"
#include "text/unicode.h"
#include "text/utf8.h"

namespace voxtral {

using text::JsonValue;

namespace text {
// Everything a loaded tokenizer holds (Tokenizer::Impl is this; the helpers below take it).
struct TokenizerState {
  std::string source;
  std::string pattern;
  int version = 0;
  int vocab_size = 0;
  int num_special = 0;
  text::RankTable ranks;  // the first vocab_size - num_special ranks
  text::Pretokenizer pretokenizer;
  std::vector<std::string> special_names;  // by id
  std::unordered_map<std::string, int> special_ids;
  int bos_id = -1, eos_id = -1;
  std::optional<AudioConfig> audio;
};
}  // namespace text

struct Tokenizer::Impl : text::TokenizerState {};

namespace {

// The special tokens of files without a special_tokens list (version <= v7), as
// mistral_common's Tekkenizer.DEPRECATED_SPECIAL_TOKENS.
constexpr const char* kDeprecatedSpecialTokens[] = {
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
};

// Reads fields of tekken.json with errors that name the file and the field.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  Status invalid(const std::string& what) const { return Status(ErrorCode::kInvalidProgram, source_ + ": " + what); }

  Result<const JsonValue*> field(const JsonValue& object, const std::string& path, std::string_view key,
                                 JsonValue::Type type, bool required) const {
    const JsonValue* v = object.find(key);
    const std::string name = path.empty() ? std::string(key) : path + "." + std::string(key);
    if (v == nullptr || v->is_null()) {  // null is "unset", as in mistral_common
      if (required) return invalid("missing field '" + name + "'" + (v ? " (it is null)" : ""));
      return static_cast<const JsonValue*>(nullptr);
    }
    if (v->type() != type) {
      return invalid("field '" + name + "' must be " + type_name(type) + ", got " + v->type_name());
    }
    return v;
  }

  Result<int64_t> integer(const JsonValue& object, const std::string& path, std::string_view key, int64_t lo,
                          int64_t hi) const {
    VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* v, field(object, path, key, JsonValue::Type::kNumber, true));
    return integer_value(*v, (path.empty() ? "" : path + ".") + std::string(key), lo, hi);
  }

  Result<int64_t> integer_value(const JsonValue& v, const std::string& name, int64_t lo, int64_t hi) const {
    int64_t x;
    if (!v.is_number() || !v.to_int64(&x)) {
      return invalid("field '" + name + "' must be an integer, got " +
                     (v.is_number() ? std::string(v.number_text()) : std::string(v.type_name())));
    }
    if (x < lo || x > hi) {
      return invalid("field '" + name + "' is " + std::to_string(x) + ", expected " + std::to_string(lo) +
                     " to " + std::to_string(hi));
    }
    return x;
  }

  Result<std::optional<double>> number(const JsonValue& object, const std::string& path, std::string_view key,
                                       bool required) const {
    VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* v, field(object, path, key, JsonValue::Type::kNumber, required));
    if (v == nullptr) return std::optional<double>();
    const double x = v->to_double();
    if (!std::isfinite(x)) return invalid("field '" + path + "." + std::string(key) + "' is not a finite number");
    return std::optional<double>(x);
  }

  static const char* type_name(JsonValue::Type t) {
    switch (t) {
      case JsonValue::Type::kNull: return "null";
      case JsonValue::Type::kBool: return "a boolean";
      case JsonValue::Type::kNumber: return "a number";
      case JsonValue::Type::kString: return "a string";
      case JsonValue::Type::kArray: return "an array";
      case JsonValue::Type::kObject: return "an object";
    }
    return "?";
  }

 private:
  const std::string& source_;
};

Result<AudioConfig> read_audio(const Reader& r, const JsonValue& a) {
  AudioConfig c;
  const std::string p = "audio";
  VOXTRAL_ASSIGN_OR_RETURN(int64_t sampling_rate, r.integer(a, p, "sampling_rate", 1, 10'000'000));
  c.sampling_rate = static_cast<int>(sampling_rate);
  VOXTRAL_ASSIGN_OR_RETURN(std::optional<double> frame_rate, r.number(a, p, "frame_rate", true));
  if (*frame_rate <= 0 || *frame_rate > c.sampling_rate)
    return r.invalid("field 'audio.frame_rate' must be > 0 and <= audio.sampling_rate");
  c.frame_rate = *frame_rate;
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* enc,
                           r.field(a, p, "audio_encoding_config", JsonValue::Type::kObject, true));
  const std::string pe = "audio.audio_encoding_config";
  VOXTRAL_ASSIGN_OR_RETURN(int64_t mels, r.integer(*enc, pe, "num_mel_bins", 1, 100000));
  VOXTRAL_ASSIGN_OR_RETURN(int64_t hop, r.integer(*enc, pe, "hop_length", 1, 10'000'000));
  VOXTRAL_ASSIGN_OR_RETURN(int64_t window, r.integer(*enc, pe, "window_size", 1, 10'000'000));
  c.num_mel_bins = static_cast<int>(mels);
  c.hop_length = static_cast<int>(hop);
  c.window_size = static_cast<int>(window);
  if (c.samples_per_token() / c.hop_length < 1)
    return r.invalid("audio: sampling_rate / frame_rate must be at least audio_encoding_config.hop_length");
  VOXTRAL_ASSIGN_OR_RETURN(c.chunk_length_s, r.number(a, p, "chunk_length_s", false));
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* format,
                           r.field(a, p, "transcription_format", JsonValue::Type::kString, false));
  if (format != nullptr) {
    if (format->string() != "streaming" && format->string() != "instruct")
      return r.invalid("field 'audio.transcription_format' must be \"instruct\" or \"streaming\", got \"" +
                       std::string(format->string()) + "\"");
    c.streaming = format->string() == "streaming";
  }
  VOXTRAL_ASSIGN_OR_RETURN(c.transcription_delay_ms, r.number(a, p, "transcription_delay_ms", c.streaming));
  VOXTRAL_ASSIGN_OR_RETURN(c.streaming_look_ahead_ms, r.number(a, p, "streaming_look_ahead_ms", c.streaming));
  VOXTRAL_ASSIGN_OR_RETURN(c.streaming_look_back_ms, r.number(a, p, "streaming_look_back_ms", c.streaming));
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* left_pad,
                           r.field(a, p, "streaming_n_left_pad_tokens", JsonValue::Type::kNumber, c.streaming));
  if (left_pad != nullptr) {
    VOXTRAL_ASSIGN_OR_RETURN(int64_t n, r.integer_value(*left_pad, "audio.streaming_n_left_pad_tokens", 0, 1'000'000));
    c.streaming_n_left_pad_tokens = static_cast<int>(n);
  }
  if (c.streaming) {
    const double frame_ms = 1000.0 / c.frame_rate;
    const double delay = *c.transcription_delay_ms;
    if (delay <= 0 || std::fmod(delay, frame_ms) != 0.0)
      return r.invalid("field 'audio.transcription_delay_ms' must be a positive multiple of the frame duration (" +
                       std::to_string(frame_ms) + " ms)");
  }
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* voices,
                           r.field(a, p, "voice_num_audio_tokens", JsonValue::Type::kObject, false));
  if (voices != nullptr) {
    for (size_t i = 0; i < voices->size(); ++i) {
      const std::string name(voices->key(i));
      VOXTRAL_ASSIGN_OR_RETURN(int64_t n,
                               r.integer_value(voices->at(i), "audio.voice_num_audio_tokens." + name, 0, 1 << 30));
      c.voice_num_audio_tokens[name] = static_cast<int>(n);
    }
  }
  return c;
}

Status read_vocab(const Reader& r, const JsonValue& vocab, size_t inner_size, text::RankTable& ranks) {
  if (vocab.size() == 0) return r.invalid("'vocab' is empty");
  if (inner_size < 256)
    return r.invalid("config.default_vocab_size - config.default_num_special_tokens is " +
                     std::to_string(inner_size) + ": the vocab needs at least the 256 byte tokens");
  if (vocab.size() < inner_size)
    return r.invalid("'vocab' has " + std::to_string(vocab.size()) + " entries, fewer than the " +
                     std::to_string(inner_size) +
                     " that config.default_vocab_size - config.default_num_special_tokens asks for");
  std::string bytes;
  for (size_t i = 0; i < inner_size; ++i) {  // later entries are cut off, as in mistral_common
    const JsonValue& e = vocab.at(i);
    const std::string name = "vocab[" + std::to_string(i) + "]";
    if (!e.is_object()) return r.invalid("'" + name + "' must be an object, got " + e.type_name());
    VOXTRAL_ASSIGN_OR_RETURN(int64_t rank, r.integer(e, name, "rank", 0, INT32_MAX));
    if (static_cast<size_t>(rank) != i)
      return r.invalid("'" + name + ".rank' is " + std::to_string(rank) + ": ranks must be 0, 1, 2, ... in order");
    VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* b64, r.field(e, name, "token_bytes", JsonValue::Type::kString, true));
    bytes.clear();
    if (!text::base64_decode(b64->string(), bytes) || bytes.empty())
      return r.invalid("'" + name + ".token_bytes' is not valid base64 of at least one byte");
    if (i < 256 && (bytes.size() != 1 || static_cast<unsigned char>(bytes[0]) != i))
      return r.invalid("'" + name + "' must be the single byte " + std::to_string(i) +
                       " (ranks 0-255 are the byte tokens)");
    if (!ranks.add(bytes)) return r.invalid("'" + name + ".token_bytes' duplicates an earlier token");
  }
  return Status::Ok();
}

Status read_special_tokens(const Reader& r, const JsonValue* list, int version, int num_special,
                           text::TokenizerState& t) {
  std::vector<std::string> names;
  if (list == nullptr) {
    if (version > 7)
      return r.invalid("missing 'special_tokens': files of version v8 and later must list their special tokens");
    names.assign(std::begin(kDeprecatedSpecialTokens), std::end(kDeprecatedSpecialTokens));
  } else {
    for (size_t i = 0; i < list->size(); ++i) {
      const JsonValue& e = list->at(i);
      const std::string name = "special_tokens[" + std::to_string(i) + "]";
      if (!e.is_object()) return r.invalid("'" + name + "' must be an object, got " + e.type_name());
      VOXTRAL_ASSIGN_OR_RETURN(int64_t rank, r.integer(e, name, "rank", 0, INT32_MAX));
      if (static_cast<size_t>(rank) != i)
        return r.invalid("'" + name + ".rank' is " + std::to_string(rank) +
                         ": special token ranks must be 0, 1, 2, ...");
      VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* str, r.field(e, name, "token_str", JsonValue::Type::kString, true));
      VOXTRAL_RETURN_IF_ERROR(r.field(e, name, "is_control", JsonValue::Type::kBool, false).status());
      names.emplace_back(str->string());
    }
  }
  if (names.size() > static_cast<size_t>(num_special))
    return r.invalid("'special_tokens' has " + std::to_string(names.size()) +
                     " entries, more than config.default_num_special_tokens (" + std::to_string(num_special) + ")");
  for (int i = static_cast<int>(names.size()); i < num_special; ++i)
    names.push_back("<SPECIAL_" + std::to_string(i) + ">");
  for (int i = 0; i < num_special; ++i) {
    if (!t.special_ids.emplace(names[i], i).second)
      return r.invalid("special token '" + names[i] + "' appears twice (ids " +
                       std::to_string(t.special_ids[names[i]]) + " and " + std::to_string(i) + ")");
  }
  t.special_names = std::move(names);
  auto find = [&](const char* name) {
    auto it = t.special_ids.find(name);
    return it == t.special_ids.end() ? -1 : it->second;
  };
  t.bos_id = find("<s>");
  t.eos_id = find("</s>");
  return Status::Ok();
}

Status parse_tekken(std::string json, const std::string& source, text::TokenizerState* t) {
  const Reader r(source);
  VOXTRAL_ASSIGN_OR_RETURN(text::JsonDocument doc, text::JsonDocument::parse(std::move(json), source));
  const JsonValue& root = doc.root();
  if (!root.is_object()) return r.invalid(std::string("the top level must be an object, got ") + root.type_name());
  t->source = source;

  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* config, r.field(root, "", "config", JsonValue::Type::kObject, true));
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* pattern,
                           r.field(*config, "config", "pattern", JsonValue::Type::kString, true));
  t->pattern = std::string(pattern->string());
  VOXTRAL_ASSIGN_OR_RETURN(int64_t vocab_size, r.integer(*config, "config", "default_vocab_size", 1, INT32_MAX));
  VOXTRAL_ASSIGN_OR_RETURN(int64_t num_special,
                           r.integer(*config, "config", "default_num_special_tokens", 0, INT32_MAX));
  if (num_special > vocab_size)
    return r.invalid("config.default_num_special_tokens (" + std::to_string(num_special) +
                     ") exceeds config.default_vocab_size (" + std::to_string(vocab_size) + ")");
  t->vocab_size = static_cast<int>(vocab_size);
  t->num_special = static_cast<int>(num_special);
  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* version,
                           r.field(*config, "config", "version", JsonValue::Type::kString, true));
  {
    const std::string_view v = version->string();
    int64_t n = 0;
    bool ok = v.size() >= 2 && v.size() <= 6 && v[0] == 'v';
    for (size_t i = 1; ok && i < v.size(); ++i) {
      ok = v[i] >= '0' && v[i] <= '9';
      n = n * 10 + (v[i] - '0');
    }
    if (!ok) return r.invalid("field 'config.version' must look like \"v7\", got \"" + std::string(v) + "\"");
    t->version = static_cast<int>(n);
  }

  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* vocab, r.field(root, "", "vocab", JsonValue::Type::kArray, true));
  VOXTRAL_RETURN_IF_ERROR(read_vocab(r, *vocab, static_cast<size_t>(vocab_size - num_special), t->ranks));

  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* specials,
                           r.field(root, "", "special_tokens", JsonValue::Type::kArray, false));
  VOXTRAL_RETURN_IF_ERROR(read_special_tokens(r, specials, t->version, t->num_special, *t));

  VOXTRAL_ASSIGN_OR_RETURN(const JsonValue* audio, r.field(root, "", "audio", JsonValue::Type::kObject, false));
  if (audio != nullptr && audio->size() > 0) {  // mistral_common skips an empty block too
    VOXTRAL_ASSIGN_OR_RETURN(AudioConfig a, read_audio(r, *audio));
    t->audio = std::move(a);
  }

  Result<text::Pretokenizer> pre = text::Pretokenizer::compile(t->pattern);
  if (!pre.ok()) return r.invalid(pre.status().message());
  t->pretokenizer = std::move(*pre);
  return Status::Ok();
}

Status check_id(const text::TokenizerState& t, int id) {
  if (id < 0 || id >= t.vocab_size)
    return Status(ErrorCode::kOutOfRange,
                  "token id " + std::to_string(id) + " is outside [0, " + std::to_string(t.vocab_size) + ")");
  return Status::Ok();
}

// Appends the UTF-8 of pending + new bytes up to an incomplete final character, which
// stays in `pending`.
void emit_complete(std::string& out, std::string& pending) {
  const auto* p = reinterpret_cast<const unsigned char*>(pending.data());
  const size_t n = pending.size();
  // The incomplete tail, if any, starts at one of the last 3 bytes.
  size_t keep_from = n;
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    if ((p[i] & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    if (p[i] >= 0xC2 && p[i] <= 0xF4) {
      const text::Utf8Char c = text::next_utf8(p + i, n - i);
      if (c.step == text::Utf8Step::kIncomplete) keep_from = i;
    }
    break;
  }
  text::append_utf8_replacing(out, pending.data(), keep_from);
  pending.erase(0, keep_from);
}

}  // namespace

int AudioConfig::samples_per_token() const {
  if (frame_rate <= 0) return 0;
  return static_cast<int>(std::floor(sampling_rate / frame_rate));
}

int AudioConfig::num_delay_tokens(std::optional<double> delay_ms) const {
  if (!delay_ms) delay_ms = transcription_delay_ms;
  if (!delay_ms || hop_length <= 0) return 0;
  // mistral_common: num_audio_tokens(delay_len(ms)).
  const auto delay_len = static_cast<int64_t>(*delay_ms / 1000.0 * sampling_rate);
  const int per_tok = static_cast<int>(static_cast<double>(samples_per_token()) / hop_length);
  if (per_tok <= 0) return 0;
  double frames;
  if (delay_len % hop_length != 0) {
    frames = std::ceil(static_cast<double>(delay_len) / hop_length - 1);
  } else {
    frames = static_cast<double>(delay_len / hop_length);
  }
  return static_cast<int>(std::ceil(frames / per_tok));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status(ErrorCode::kNotFound, "tokenizer file '" + path + "' does not exist");
  if (S_ISDIR(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, "tokenizer file '" + path + "' is a directory (pass its tekken.json)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kIoError, "cannot open tokenizer file '" + path + "'");
  std::string contents;
  contents.resize(static_cast<size_t>(st.st_size));
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.gcount() != static_cast<std::streamsize>(contents.size()))
    return Status(ErrorCode::kIoError, "cannot read tokenizer file '" + path + "'");
  return from_json(std::move(contents), path);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string json, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  VOXTRAL_RETURN_IF_ERROR(parse_tekken(std::move(json), source, impl.get()));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Result<std::vector<int>> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  size_t bad;
  if (!text::is_valid_utf8(text.data(), text.size(), &bad))
    return Status(ErrorCode::kInvalidArgument, "text is not valid UTF-8 (at byte " + std::to_string(bad) +
                                                   "); use encode_bytes to replace bad bytes with U+FFFD");
  const Impl& t = *impl_;
  if ((bos && t.bos_id < 0) || (eos && t.eos_id < 0))
    return Status(ErrorCode::kInvalidArgument,
                  t.source + " has no " + (bos && t.bos_id < 0 ? "<s>" : "</s>") + " token");
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 2);
  if (bos) ids.push_back(t.bos_id);
  std::vector<uint64_t> scratch;
  t.pretokenizer.split(text, [&](size_t begin, size_t end) {
    t.ranks.encode_piece(text.substr(begin, end - begin), t.num_special, ids, scratch);
  });
  if (eos) ids.push_back(t.eos_id);
  return ids;
}

Result<std::vector<int>> Tokenizer::encode_bytes(std::string_view bytes, bool bos, bool eos) const {
  if (text::is_valid_utf8(bytes.data(), bytes.size())) return encode(bytes, bos, eos);
  std::string fixed;
  fixed.reserve(bytes.size() + 16);
  text::append_utf8_replacing(fixed, bytes.data(), bytes.size());
  return encode(fixed, bos, eos);
}

Result<std::string> Tokenizer::decode(const int* ids, size_t n, SpecialTokenPolicy policy) const {
  const Impl& t = *impl_;
  std::string out;
  out.reserve(n * 4);
  size_t run = 0;  // out[run..] holds the bytes of the current run of text tokens
  // A run ends at a special token or the end: ill-formed UTF-8 in it becomes U+FFFD.
  auto end_run = [&] {
    if (text::is_valid_utf8(out.data() + run, out.size() - run)) return;
    const std::string bytes = out.substr(run);
    out.resize(run);
    text::append_utf8_replacing(out, bytes.data(), bytes.size());
  };
  for (size_t i = 0; i < n; ++i) {
    const int id = ids[i];
    VOXTRAL_RETURN_IF_ERROR(check_id(t, id));
    if (id >= t.num_special) {
      const std::string_view b = t.ranks.bytes(static_cast<uint32_t>(id - t.num_special));
      out.append(b.data(), b.size());
      continue;
    }
    if (policy == SpecialTokenPolicy::kRaise)
      return Status(ErrorCode::kInvalidArgument, "token id " + std::to_string(id) + " (" + t.special_names[id] +
                                                     ") is a special token and the policy is to raise");
    end_run();
    if (policy == SpecialTokenPolicy::kKeep) out += t.special_names[id];
    run = out.size();
  }
  end_run();
  return out;
}

Result<std::string_view> Tokenizer::token_bytes(int id) const {
  VOXTRAL_RETURN_IF_ERROR(check_id(*impl_, id));
  if (id < impl_->num_special) return std::string_view();
  return impl_->ranks.bytes(static_cast<uint32_t>(id - impl_->num_special));
}

Result<std::string> Tokenizer::piece(int id) const { return decode(&id, 1, SpecialTokenPolicy::kKeep); }

Result<int> Tokenizer::id_of(std::string_view name) const {
  auto it = impl_->special_ids.find(std::string(name));
  if (it == impl_->special_ids.end())
    return Status(ErrorCode::kNotFound, "no special token '" + std::string(name) + "' in " + impl_->source);
  return it->second;
}

bool Tokenizer::is_control(int id) const { return id >= 0 && id < impl_->num_special; }
int Tokenizer::vocab_size() const { return impl_->vocab_size; }
int Tokenizer::num_special_tokens() const { return impl_->num_special; }
int Tokenizer::version() const { return impl_->version; }
const std::string& Tokenizer::pattern() const { return impl_->pattern; }
const AudioConfig* Tokenizer::audio() const { return impl_->audio ? &*impl_->audio : nullptr; }
const std::string& Tokenizer::source() const { return impl_->source; }
const char* Tokenizer::unicode_version() { return text::unicode_version(); }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, SpecialTokenPolicy policy)
    : tokenizer_(&tokenizer), policy_(policy) {}

Result<std::string> StreamDecoder::push(int id) {
  const text::TokenizerState& t = *tokenizer_->impl_;
  VOXTRAL_RETURN_IF_ERROR(check_id(t, id));
  std::string out;
  if (id >= t.num_special) {
    const std::string_view b = t.ranks.bytes(static_cast<uint32_t>(id - t.num_special));
    pending_.append(b.data(), b.size());
    emit_complete(out, pending_);
    return out;
  }
  switch (policy_) {
    case SpecialTokenPolicy::kIgnore: break;
    case SpecialTokenPolicy::kKeep:
      out = flush();
      out += t.special_names[id];
      break;
    case SpecialTokenPolicy::kRaise:
      return Status(ErrorCode::kInvalidArgument, "token id " + std::to_string(id) + " (" + t.special_names[id] +
                                                     ") is a special token and the policy is to raise");
  }
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  text::append_utf8_replacing(out, pending_.data(), pending_.size());
  pending_.clear();
  return out;
}

}  // namespace voxtral
