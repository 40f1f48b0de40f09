// TtsSession: one request through the synthesis loop (voxtral/tts.h), utterance by utterance.
//
//   prefill(prompt ids [1, T], voice rows [1, N, dim]) -> hidden [1, dim], semantic code
//     or, when the LM cache holds this voice's prefix [BOS] [BEGIN_AUDIO] voice (positions
//     0..N+1, written by an earlier utterance of this Program), text_prefill(the rest of the
//     prompt, position N + 2): the prefix's keys depend on the voice alone
//   per frame: semantic code (END_AUDIO: the utterance ends, no frame)
//              -> noise [36] -> acoustic_step x n_decoding_steps -> 36 acoustic codes
//              -> decode(37 codes, position) -> next hidden, semantic code
//   codec(codes [1, F, 37]) on the streaming schedule -> audio chunks
#include <atomic>
#include <cmath>
#include <mutex>

#include "runtime/busy_guard.h"
#include "tts/noise.h"
#include "tts/runner_impl.h"
#include "voxtral/bf16.h"

namespace voxtral {

namespace {

// Float inputs as the program takes them: float32 in place, or converted to bf16 into
// `staging` (round to nearest even) when the program's edges are bf16.
TensorView stage(const float* data, std::vector<int64_t> shape, bool bf16, std::vector<uint16_t>& staging) {
  TensorView view = TensorView::f32(data, std::move(shape));
  if (!bf16) return view;
  staging.resize(static_cast<size_t>(view.numel()));
  float_to_bf16(data, staging.data(), staging.size());
  return TensorView::bf16(staging.data(), std::move(view.shape));
}

// A float output (float32 or bf16) copied out as float32: with shared arenas the next call of
// any method may overwrite it.
Status read_floats(const TensorView& view, int64_t expected, const char* what, std::vector<float>& out) {
  if (view.numel() != expected || (view.dtype != DType::kFloat32 && view.dtype != DType::kBFloat16)) {
    return Status(ErrorCode::kInvalidProgram, std::string("'") + what + "' returned an unexpected output");
  }
  out.resize(static_cast<size_t>(expected));
  if (view.dtype == DType::kFloat32) {
    std::copy(view.f32(), view.f32() + expected, out.begin());
  } else {
    bf16_to_float(view.bf16(), out.data(), out.size());
  }
  return Status::Ok();
}

Result<int64_t> read_code(const TensorView& view, const char* what) {
  if (view.dtype != DType::kInt64 || view.numel() != 1) {
    return Status(ErrorCode::kInvalidProgram, std::string("'") + what + "' returned an unexpected semantic code");
  }
  return view.i64()[0];
}

}  // namespace

struct TtsSession::Impl {
  std::shared_ptr<const TtsRunner> runner;
  const TtsRunner::Impl* r = nullptr;  // runner->impl_, immutable but for its idle Program
  const TtsMetadata& m;
  std::unique_ptr<Program> program;
  const TtsVoice* cached_prefix = nullptr;  // the voice whose prompt prefix the LM cache holds
  TtsRequest request;
  const TtsVoice* voice = nullptr;
  std::vector<std::string> utterances;
  tts::NoiseGenerator rng;
  const bool bf16;

  // the current utterance
  size_t utterance = 0;
  bool started = false;   // prefilled
  bool ended = false;     // END_AUDIO, max_frames or the positions ran out
  int64_t position = 0;   // the next LM position
  std::vector<float> hidden;           // [dim] the last LM hidden state
  int64_t semantic = 0;                // its greedy semantic code
  std::vector<int64_t> frame_codes;    // [frames, 37] of this utterance
  int64_t decoded_frames = 0;          // frames of this utterance already through the codec

  // the request
  std::atomic<int64_t> frames{0};
  std::atomic<int64_t> samples{0};
  std::atomic<bool> finished{false};
  bool pause_due = false;
  mutable std::mutex codes_mutex;  // codes() may be read from another thread
  std::vector<int64_t> all_codes;
  std::atomic<bool> busy{false};
  Status failure = Status::Ok();

  // scratch
  std::vector<float> x, noise, logits, embeds;
  std::vector<uint16_t> staged_a, staged_b;
  std::vector<int64_t> ids, codec_in;

  Impl(std::shared_ptr<const TtsRunner> owner, const TtsRunner::Impl* state, TtsRequest req)
      : runner(std::move(owner)), r(state), m(state->metadata), request(std::move(req)), rng(request.seed),
        bf16(state->metadata.lm_input_is_bf16 != 0) {}

  bool frame_limit_reached() const { return request.max_frames > 0 && frames >= request.max_frames; }

  Status lm_output(const std::vector<TensorView>& out, const char* method) {
    if (out.size() != 2) return Status(ErrorCode::kInvalidProgram, std::string("'") + method + "' returned an unexpected output");
    VOXTRAL_RETURN_IF_ERROR(read_floats(out[0], m.dim, method, hidden));
    VOXTRAL_ASSIGN_OR_RETURN(semantic, read_code(out[1], method));
    return Status::Ok();
  }

  // [BOS] [BEGIN_AUDIO] [AUDIO]*N [NEXT_AUDIO_TEXT] text [REPEAT_AUDIO_TEXT] [BEGIN_AUDIO] [AUDIO]
  Status prefill() {
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<int> text, r->tokenizer->encode(utterances[utterance]));
    ids.assign({r->bos_id, r->begin_audio_id});
    ids.insert(ids.end(), static_cast<size_t>(voice->rows), r->audio_id);
    ids.push_back(r->next_audio_text_id);
    ids.insert(ids.end(), text.begin(), text.end());
    ids.insert(ids.end(), {r->repeat_audio_text_id, r->begin_audio_id, r->audio_id});
    const int64_t t = static_cast<int64_t>(ids.size());
    if (t > m.max_prompt_tokens) {
      return Status(ErrorCode::kInternal, "an utterance's prompt has " + std::to_string(t) + " tokens; the program takes " +
                                              std::to_string(m.max_prompt_tokens));
    }
    if (r->has_text_prefill && cached_prefix == voice) {
      int64_t prefix = 2 + voice->rows;  // [BOS] [BEGIN_AUDIO] voice
      VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                               program->execute("text_prefill", {TensorView::i64(ids.data() + prefix, {1, t - prefix}),
                                                                 TensorView::i64(&prefix, {1})}));
      VOXTRAL_RETURN_IF_ERROR(lm_output(out, "text_prefill"));
    } else {
      cached_prefix = nullptr;  // until the prefill below has written it
      const float* rows = r->voices.rows.data() + voice->first_row * m.dim;
      VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                               program->execute("prefill", {TensorView::i64(ids.data(), {1, t}),
                                                            stage(rows, {1, voice->rows, m.dim}, bf16, staged_a)}));
      VOXTRAL_RETURN_IF_ERROR(lm_output(out, "prefill"));
      cached_prefix = voice;
    }
    position = t;
    started = true;
    return Status::Ok();
  }

  // The frame's semantic code: greedy from the LM step, or drawn from softmax(logits / T).
  Result<int64_t> semantic_code() {
    if (request.temperature <= 0.f) return semantic;
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                             program->execute("semantic_logits", {stage(hidden.data(), {1, m.dim}, bf16, staged_a)}));
    if (out.size() != 1) return Status(ErrorCode::kInvalidProgram, "'semantic_logits' returned an unexpected output");
    VOXTRAL_RETURN_IF_ERROR(read_floats(out[0], m.semantic_logits_size, "semantic_logits", logits));
    double top = -INFINITY;
    for (float l : logits) top = std::max(top, static_cast<double>(l));
    double total = 0;
    std::vector<double> weight(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
      weight[i] = std::isinf(logits[i]) ? 0.0 : std::exp((logits[i] - top) / request.temperature);
      total += weight[i];
    }
    const double u = static_cast<double>(rng.uniform()) * total;
    double acc = 0;
    int64_t last = semantic;
    for (size_t i = 0; i < weight.size(); ++i) {
      if (weight[i] == 0.0) continue;
      acc += weight[i];
      last = static_cast<int64_t>(i);
      if (u < acc) break;
    }
    return last;
  }

  // One frame: its codes appended, or the utterance ended.
  Status step_frame() {
    VOXTRAL_ASSIGN_OR_RETURN(const int64_t code, semantic_code());
    if (code == m.end_audio_code) {
      ended = true;
      return Status::Ok();
    }
    if (code < m.n_special_codes || code >= m.n_special_codes + m.semantic_codebook_size) {
      return Status(ErrorCode::kInternal, "the semantic head produced code " + std::to_string(code) +
                                              " outside the codebook");
    }
    const int n_acoustic = m.n_codebooks - 1;
    x.resize(static_cast<size_t>(n_acoustic));
    for (float& v : x) v = rng.normal() * static_cast<float>(m.noise_scale);
    std::vector<int64_t> codes(static_cast<size_t>(m.n_codebooks));
    codes[0] = code;
    for (int64_t step = 0; step < m.n_decoding_steps; ++step) {
      VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                               program->execute("acoustic_step", {stage(hidden.data(), {1, m.dim}, bf16, staged_a),
                                                                  stage(x.data(), {1, n_acoustic}, bf16, staged_b),
                                                                  TensorView::i64(&step, {1})}));
      if (out.size() != 2 || out[1].dtype != DType::kInt64 || out[1].numel() != n_acoustic) {
        return Status(ErrorCode::kInvalidProgram, "'acoustic_step' returned an unexpected output");
      }
      std::copy(out[1].i64(), out[1].i64() + n_acoustic, codes.begin() + 1);
      VOXTRAL_RETURN_IF_ERROR(read_floats(out[0], n_acoustic, "acoustic_step", x));
    }
    frame_codes.insert(frame_codes.end(), codes.begin(), codes.end());
    {
      std::lock_guard<std::mutex> lock(codes_mutex);
      all_codes.insert(all_codes.end(), codes.begin(), codes.end());
    }
    ++frames;
    if (frame_limit_reached() || position >= m.max_positions) {
      ended = true;  // no next step: skip its LM call
      return Status::Ok();
    }
    // a position past the ring's slots overwrites slot position % slots, maybe the prefix's
    if (position >= m.lm_cache_slots) cached_prefix = nullptr;
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                             program->execute("decode", {TensorView::i64(codes.data(), {1, m.n_codebooks}),
                                                         TensorView::i64(&position, {1})}));
    VOXTRAL_RETURN_IF_ERROR(lm_output(out, "decode"));
    ++position;
    return Status::Ok();
  }

  int64_t pending() const { return static_cast<int64_t>(frame_codes.size()) / m.n_codebooks - decoded_frames; }

  bool chunk_ready() const {
    const int64_t n = pending();
    if (ended) return true;
    return n >= (decoded_frames == 0 ? m.first_chunk_frames : m.chunk_frames);
  }

  // Decodes up to chunk_frames pending frames after codec_context_frames of left context:
  // the program decodes exactly max_codec_frames (codec) or first_chunk_frames (first_chunk_codec,
  // an utterance's first chunk), so the call is padded on the right with EMPTY_AUDIO (the
  // codec is causal: padding after a frame does not change its samples).
  Status decode_chunk(std::vector<float>& audio) {
    const int64_t n = std::min<int64_t>(pending(), m.chunk_frames);
    audio.clear();
    if (n == 0) return Status::Ok();
    const int64_t context = std::min<int64_t>(decoded_frames, m.codec_context_frames);
    const int64_t first = decoded_frames - context;
    const bool short_call = r->has_first_chunk_codec && context + n <= m.first_chunk_frames;
    const char* method = short_call ? "first_chunk_codec" : "codec";
    const int64_t f = short_call ? m.first_chunk_frames : m.max_codec_frames;
    codec_in.assign(static_cast<size_t>(f * m.n_codebooks), m.empty_audio_code);
    std::copy(frame_codes.begin() + first * m.n_codebooks, frame_codes.begin() + (decoded_frames + n) * m.n_codebooks,
              codec_in.begin());
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                             program->execute(method, {TensorView::i64(codec_in.data(), {1, f, m.n_codebooks})}));
    if (out.size() != 1 || out[0].dtype != DType::kFloat32 || out[0].numel() != f * m.samples_per_frame) {
      return Status(ErrorCode::kInvalidProgram, std::string("'") + method + "' returned an unexpected output");
    }
    const float* begin = out[0].f32() + context * m.samples_per_frame;
    audio.assign(begin, begin + n * m.samples_per_frame);
    decoded_frames += n;
    return Status::Ok();
  }

  void next_utterance() {
    ++utterance;
    started = ended = false;
    frame_codes.clear();
    decoded_frames = 0;
  }

  bool more_utterances() const { return utterance + 1 < utterances.size() && !frame_limit_reached(); }

  Result<AudioChunk> next() {
    AudioChunk chunk;
    chunk.first_sample = samples;
    if (pause_due) {  // the silence between two utterances
      pause_due = false;
      chunk.samples.assign(static_cast<size_t>(request.pause_frames) * m.samples_per_frame, 0.f);
      samples += static_cast<int64_t>(chunk.samples.size());
      return chunk;
    }
    while (true) {
      if (!started) VOXTRAL_RETURN_IF_ERROR(prefill());
      while (!chunk_ready()) VOXTRAL_RETURN_IF_ERROR(step_frame());
      VOXTRAL_RETURN_IF_ERROR(decode_chunk(chunk.samples));
      if (!ended || pending() > 0) break;  // more of this utterance follows
      if (!more_utterances()) {
        chunk.last = true;
        finished = true;
        break;
      }
      next_utterance();
      const bool spoke = samples > 0 || !chunk.samples.empty();  // silence only between audio
      if (!chunk.samples.empty()) {
        pause_due = spoke && request.pause_frames > 0;
        break;
      }
      if (spoke && request.pause_frames > 0) {
        chunk.samples.assign(static_cast<size_t>(request.pause_frames) * m.samples_per_frame, 0.f);
        break;
      }
      // nothing to play yet: go on to the next utterance
    }
    samples += static_cast<int64_t>(chunk.samples.size());
    return chunk;
  }
};

std::vector<float> tts_noise(uint64_t seed, size_t n) {
  tts::NoiseGenerator rng(seed);
  std::vector<float> out(n);
  for (float& v : out) v = rng.normal();
  return out;
}

TtsSession::TtsSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TtsSession::~TtsSession() {
  // The Program goes back to the runner for the next session (runtime/idle_program.h).
  if (impl_ && impl_->program && impl_->failure.ok()) impl_->r->idle.put(std::move(impl_->program), impl_->cached_prefix);
}

Result<std::unique_ptr<TtsSession>> TtsRunner::new_session(const TtsRequest& request) const {
  if (request.max_frames < 0) return Status(ErrorCode::kInvalidArgument, "max_frames must be positive (0 = no limit)");
  if (!std::isfinite(request.temperature) || request.temperature < 0.f) {
    return Status(ErrorCode::kInvalidArgument, "temperature must be a finite number >= 0 (0 = greedy)");
  }
  if (request.pause_frames < 0 || request.pause_frames > 1000) {
    return Status(ErrorCode::kInvalidArgument, "pause_frames must be in [0, 1000]");
  }
  VOXTRAL_ASSIGN_OR_RETURN(const TtsVoice* voice, impl_->voice(request.voice));
  auto impl = std::make_unique<TtsSession::Impl>(shared_from_this(), impl_.get(), request);
  impl->voice = voice;
  VOXTRAL_ASSIGN_OR_RETURN(impl->utterances, impl_->split(request.text, *voice));
  ProgramOptions options;
  options.share_memory_arenas = true;  // prefill and decode write one KV cache
  auto kept = impl_->idle.take();
  impl->program = std::move(kept.program);
  impl->cached_prefix = kept.tag;
  if (!impl->program) {
    VOXTRAL_ASSIGN_OR_RETURN(impl->program, Program::load(impl_->program_path, options));
  }
  return std::unique_ptr<TtsSession>(new TtsSession(std::move(impl)));
}

Result<AudioChunk> TtsSession::next() {
  Impl& s = *impl_;
  BusyGuard guard(s.busy);
  VOXTRAL_RETURN_IF_ERROR(guard.status());
  if (!s.failure.ok()) return s.failure;
  if (s.finished) return Status(ErrorCode::kFailedPrecondition, "next() after the last chunk: the session is done");
  Result<AudioChunk> chunk = s.next();
  if (!chunk.ok()) s.failure = chunk.status();  // the loop's state is torn: every later call fails alike
  return chunk;
}

bool TtsSession::done() const { return impl_->finished; }
int64_t TtsSession::frames() const { return impl_->frames; }
int64_t TtsSession::samples() const { return impl_->samples; }
int64_t TtsSession::utterances() const { return static_cast<int64_t>(impl_->utterances.size()); }
std::vector<int64_t> TtsSession::codes() const {
  std::lock_guard<std::mutex> lock(impl_->codes_mutex);
  return impl_->all_codes;
}

}  // namespace voxtral
