// SttSession: one stream through the reference schedule.
//
//   samples -> LogMel (streaming, global hop grid) -> 8 mel frames per audio token
//   -> encode (up to max_encoder_tokens per call) -> audio embeddings [k, dim]
//   -> decode: prefill positions 0..P-1 (BOS, STREAMING_PAD...) once P embeddings exist,
//      then one position per new embedding, the previous token fed back (several per call
//      inside runs of one token, [STREAMING_PAD] above all: decode_some).
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>

#include "runtime/busy_guard.h"
#include "stt/runner_impl.h"
#include "voxtral/log_mel.h"

namespace voxtral {

struct SttSession::Impl {
  std::shared_ptr<const SttRunner> runner;
  const SttRunner::Impl* r = nullptr;  // runner->impl_, immutable but for its idle Program
  std::unique_ptr<Program> program;
  std::unique_ptr<LogMel> mel;
  StreamDecoder text;

  std::vector<float> mel_chunk;    // [n_mels, frames] input of one encode call
  std::vector<float> embeds;       // [k, dim] audio embeddings not yet decoded
  int64_t encoded_tokens = 0;      // audio tokens encoded (the next encode's start_token)
  int64_t next_pos = 0;            // next decoder position (0: prompt not yet prefilled)
  int64_t prev_token = 0;
  int64_t before_prev = -1;        // the token before prev_token (a run: the two are equal)
  std::atomic<int64_t> steps{0};    // read by steps() from any thread
  std::atomic<int64_t> calls{0};    // decode calls (decode_calls() from any thread)
  std::atomic<int64_t> samples{0};  // real samples fed (samples_fed() from any thread)
  bool started = false;
  bool flushed = false;
  bool program_failed = false;  // a call into the program failed: not reused (idle_program.h)
  const float delay = 0.f;
  std::atomic<bool> busy{false};  // inside feed() or flush(): a second caller gets an error
  std::mutex pieces_mutex;        // drain() may run beside feed() (one thread feeds, one reads)
  std::vector<TextPiece> pieces;

  Impl(std::shared_ptr<const SttRunner> owner, const SttRunner::Impl* state)
      : runner(std::move(owner)), r(state), text(*state->tokenizer), delay(static_cast<float>(state->delay_tokens)) {}

  Status feed_zeros(int64_t n) {
    std::vector<float> zeros(static_cast<size_t>(std::min<int64_t>(n, 1 << 16)), 0.f);
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<int64_t>(n, static_cast<int64_t>(zeros.size())));
      VOXTRAL_RETURN_IF_ERROR(mel->feed(zeros.data(), k));
      n -= static_cast<int64_t>(k);
    }
    return Status::Ok();
  }

  // Encodes the complete audio tokens the frontend has frames for: in a stream once
  // batch_tokens of them are ready, at the end (`all`) every one.
  Status encode_ready(bool all = false) {
    const SttMetadata& m = r->metadata;
    const size_t per_token = static_cast<size_t>(m.mel_frames_per_token);
    const size_t wanted = per_token * static_cast<size_t>(all ? 1 : r->batch_tokens);
    while (mel->frames_ready() >= wanted) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(mel->frames_ready() / per_token), m.max_encoder_tokens);
      const size_t frames = static_cast<size_t>(n) * per_token;
      mel_chunk.resize(static_cast<size_t>(m.num_mel_bins) * frames);
      VOXTRAL_RETURN_IF_ERROR(mel->read_frames(frames, mel_chunk.data()));  // [n_mels, frames]
      const int64_t start = encoded_tokens;
      VOXTRAL_ASSIGN_OR_RETURN(
          std::vector<TensorView> out,
          program->execute("encode", {TensorView::f32(mel_chunk.data(), {1, m.num_mel_bins, static_cast<int64_t>(frames)}),
                                      TensorView::i64(&start, {1})}));
      if (out.empty() || out[0].dtype != DType::kFloat32 || out[0].numel() != n * m.dim) {
        return Status(ErrorCode::kInvalidProgram, "'encode' returned an unexpected output");
      }
      embeds.insert(embeds.end(), out[0].f32(), out[0].f32() + out[0].numel());
      encoded_tokens += n;
    }
    return Status::Ok();
  }

  // One decode call over positions pos.. (ids.size() of them) -> the greedy token of each
  // of the last min(T, max_verify_tokens) positions (the last one is the next token).
  Result<std::vector<int64_t>> decode_call(const float* audio, const std::vector<int64_t>& ids, int64_t pos) {
    const SttMetadata& m = r->metadata;
    const int64_t t = static_cast<int64_t>(ids.size());
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<TensorView> out,
                             program->execute("decode", {TensorView::f32(audio, {1, t, m.dim}), TensorView::i64(ids.data(), {1, t}),
                                                         TensorView::i64(&pos, {1}), TensorView::f32(&delay, {1})}));
    // (logits, tokens), or the tokens alone where the argmax runs on the device (AOTI packages)
    const int64_t k = std::min<int64_t>(t, m.max_verify_tokens);
    if (out.empty() || out.size() > 2 || out.back().dtype != DType::kInt64 || out.back().numel() != k) {
      return Status(ErrorCode::kInvalidProgram, "'decode' returned an unexpected output");
    }
    ++calls;
    std::vector<int64_t> tokens(out.back().i64(), out.back().i64() + k);
    for (int64_t token : tokens) {
      if (token < 0 || token >= m.vocab_size) {
        return Status(ErrorCode::kInternal, "'decode' produced token id " + std::to_string(token) + " outside the vocabulary");
      }
    }
    return tokens;
  }

  Status emit(int64_t token) {
    const SttMetadata& m = r->metadata;
    VOXTRAL_ASSIGN_OR_RETURN(std::string piece, text.push(static_cast<int>(token)));
    const double token_s = static_cast<double>(m.samples_per_token) / m.sample_rate;
    {
      std::lock_guard<std::mutex> lock(pieces_mutex);
      pieces.push_back(TextPiece{std::move(piece), static_cast<int>(token), steps, static_cast<double>(steps) * token_s});
    }
    ++steps;
    before_prev = prev_token;
    prev_token = token;
    return Status::Ok();
  }

  // Decodes positions next_pos.. from the audio embeddings at `audio` (`available` of them);
  // returns how many positions were decoded (each gave one token).
  //
  // Speculation through runs: inside a run of one token (a [STREAMING_PAD] run, the common
  // case, or any token seen twice in a row), with k > 1 embeddings waiting, one call over k
  // positions feeds the known token and then guesses the run goes on for the next k - 1
  // inputs. Output i is exact while every guess before it was right, so the outputs are kept
  // up to and including the first that breaks the run, or all k; the positions past it were
  // computed from a wrong guess and are decoded again by the next call, which rewrites their
  // ring-cache slots (a stale slot holds a position at most k - 1 <= max_decoder_tokens - 1
  // past the new last one, which the ring's position mask never shows: ops.py). The tokens
  // are those of one step at a time; a broken run costs the call's extra positions.
  Result<int64_t> decode_some(const float* audio, int64_t available) {
    const bool in_run = prev_token == r->pad_id || (steps >= 2 && prev_token == before_prev);
    const int64_t k = in_run ? std::min<int64_t>(available, r->speculative_tokens) : 1;
    const int64_t guess = prev_token;
    std::vector<int64_t> ids(static_cast<size_t>(k), guess);
    VOXTRAL_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, decode_call(audio, ids, next_pos));
    int64_t kept = 0;
    while (kept < k) {
      VOXTRAL_RETURN_IF_ERROR(emit(tokens[static_cast<size_t>(kept)]));
      ++kept;
      if (tokens[static_cast<size_t>(kept - 1)] != guess) break;  // the next input was guessed wrong
    }
    next_pos += kept;
    return kept;
  }

  // Runs every decoder position whose audio embedding exists.
  Status decode_ready() {
    const int dim = r->metadata.dim;
    const int64_t available = static_cast<int64_t>(embeds.size()) / dim;
    int64_t used = 0;
    if (next_pos == 0) {
      if (available < r->prompt_len) return Status::Ok();
      std::vector<int64_t> prompt(static_cast<size_t>(r->prompt_len), r->pad_id);
      prompt[0] = r->bos_id;
      VOXTRAL_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, decode_call(embeds.data(), prompt, 0));
      VOXTRAL_RETURN_IF_ERROR(emit(tokens.back()));
      next_pos = used = r->prompt_len;
    }
    while (used < available) {
      VOXTRAL_ASSIGN_OR_RETURN(int64_t n, decode_some(embeds.data() + used * dim, available - used));
      used += n;
    }
    embeds.erase(embeds.begin(), embeds.begin() + used * dim);  // memory stays flat
    return Status::Ok();
  }

  Status start() {
    if (started) return Status::Ok();
    started = true;
    // The reference prepends 32 tokens of silence: positions 0..31 pair with it.
    return feed_zeros(static_cast<int64_t>(r->metadata.n_left_pad_tokens) * r->metadata.samples_per_token);
  }
};

SttSession::SttSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SttSession::~SttSession() {
  // The Program goes back to the runner for the next session (runtime/idle_program.h).
  if (impl_ && impl_->program && !impl_->program_failed) impl_->r->idle.put(std::move(impl_->program));
}

Result<std::unique_ptr<SttSession>> SttRunner::new_session() const {
  auto impl = std::make_unique<SttSession::Impl>(shared_from_this(), impl_.get());
  impl->program = impl_->idle.take().program;
  if (!impl->program) {
    VOXTRAL_ASSIGN_OR_RETURN(impl->program, Program::load(impl_->program_path));
    // Loaded here, not at the first feed: a live stream's first chunk would otherwise wait
    // seconds for them.
    VOXTRAL_RETURN_IF_ERROR(impl->program->prepare("encode"));
    VOXTRAL_RETURN_IF_ERROR(impl->program->prepare("decode"));
  }
  const SttMetadata& m = impl_->metadata;
  LogMelConfig config;
  config.sample_rate = m.sample_rate;
  config.n_fft = m.window_size;
  config.hop_length = m.hop_length;
  config.num_mel_bins = m.num_mel_bins;
  config.global_log_mel_max = static_cast<float>(m.global_log_mel_max);
  VOXTRAL_ASSIGN_OR_RETURN(LogMel mel, LogMel::create(config));
  impl->mel = std::make_unique<LogMel>(std::move(mel));
  return std::unique_ptr<SttSession>(new SttSession(std::move(impl)));
}

Status SttSession::feed(const float* samples, size_t n) {
  Impl& s = *impl_;
  BusyGuard guard(s.busy);
  VOXTRAL_RETURN_IF_ERROR(guard.status());
  if (s.flushed) return Status(ErrorCode::kFailedPrecondition, "feed() after flush(): start a new session");
  if (n > 0 && samples == nullptr) return Status(ErrorCode::kInvalidArgument, "feed(): null samples");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(samples[i])) {
      return Status(ErrorCode::kInvalidArgument, "feed(): sample " + std::to_string(i) + " is not finite (NaN or inf)");
    }
  }
  VOXTRAL_RETURN_IF_ERROR(s.start());
  VOXTRAL_RETURN_IF_ERROR(s.mel->feed(samples, n));
  s.samples += static_cast<int64_t>(n);
  Status status = s.encode_ready();
  if (status.ok()) status = s.decode_ready();
  if (!status.ok()) s.program_failed = true;
  return status;
}

std::vector<TextPiece> SttSession::drain() {
  std::vector<TextPiece> out;
  std::lock_guard<std::mutex> lock(impl_->pieces_mutex);
  out.swap(impl_->pieces);
  return out;
}

Status SttSession::flush() {
  Impl& s = *impl_;
  BusyGuard guard(s.busy);
  VOXTRAL_RETURN_IF_ERROR(guard.status());
  if (s.flushed) return Status::Ok();
  VOXTRAL_RETURN_IF_ERROR(s.start());
  // The reference right pad: to a whole token, then delay + n_right_pad_tokens (1 + 10)
  // tokens of silence, so the last words come out despite the delay.
  const int64_t spt = s.r->metadata.samples_per_token;
  const int64_t to_whole = (spt - s.samples % spt) % spt;
  VOXTRAL_RETURN_IF_ERROR(s.feed_zeros(to_whole + (s.r->delay_tokens + s.r->metadata.n_right_pad_tokens) * spt));
  VOXTRAL_RETURN_IF_ERROR(s.mel->finish());
  Status status = s.encode_ready(/*all=*/true);
  if (status.ok()) status = s.decode_ready();
  if (!status.ok()) {
    s.program_failed = true;
    return status;
  }
  std::string tail = s.text.flush();
  std::lock_guard<std::mutex> lock(s.pieces_mutex);
  if (!tail.empty()) s.pieces.push_back(TextPiece{std::move(tail), -1, s.steps, static_cast<double>(s.steps) * spt / s.r->metadata.sample_rate});
  s.flushed = true;
  return Status::Ok();
}

int64_t SttSession::samples_fed() const { return impl_->samples; }
int64_t SttSession::steps() const { return impl_->steps; }
int64_t SttSession::decode_calls() const { return impl_->calls; }

}  // namespace voxtral
