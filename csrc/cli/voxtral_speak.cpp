// voxtral-speak: text-to-speech from the command line, on libvoxtral alone.
//
//   voxtral-speak MODEL_DIR TEXT OUT.wav [--voice NAME] [--seed N] [--max-frames N] [--threads N]
//   voxtral-speak MODEL_DIR --list-voices
//
// MODEL_DIR is an artifact directory from `voxtral-native export tts`; TEXT "-" reads the text
// from stdin. OUT.wav is 24 kHz mono float32 (IEEE float), the runtime's samples unchanged,
// written chunk by chunk as the session makes them. Exit codes: 0 done, 1 an error (the
// message says which), 2 bad usage.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "cli/wav.h"
#include "voxtral/voxtral.h"

namespace {

constexpr const char* kUsage =
    "usage: voxtral-speak MODEL_DIR TEXT OUT.wav [--voice NAME] [--seed N] [--max-frames N] [--threads N]\n"
    "       voxtral-speak MODEL_DIR --list-voices\n"
    "TEXT '-' reads the text from stdin. OUT.wav: mono float32 WAV at the model's rate (24 kHz).\n"
    "  --voice NAME      a preset voice (default: the model's default voice; --list-voices lists them)\n"
    "  --seed N          seed of the generator, 0 .. 18446744073709551615 (default 42)\n"
    "  --max-frames N    stop after N frames of 80 ms (default 0: until the model ends the speech)\n"
    "  --threads N       threads of the runtime, 1 .. 1024 (default: one per core)\n";

int usage_error(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "voxtral-speak: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

int fail(const voxtral::Status& status, const std::string& note = "") {
  std::fprintf(stderr, "voxtral-speak: %s%s\n", status.to_string().c_str(), note.c_str());
  return 1;
}

// A decimal number in [0, max]: digits only (strtoull would take a sign, spaces and wrap
// "-1" to 2^64-1, so it is not used). On failure `why` says what is wrong with `text`.
bool parse_unsigned(const std::string& text, uint64_t max, uint64_t& out, std::string& why) {
  const std::string shown = "'" + text + "'";
  if (text.empty()) {
    why = "needs a number";
    return false;
  }
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) i = 1;
  uint64_t v = 0;
  bool digits = i < text.size();
  for (size_t j = i; j < text.size(); ++j) digits = digits && text[j] >= '0' && text[j] <= '9';
  if (!digits) {
    why = shown + " is not a whole number";
    return false;
  }
  if (negative) {  // even "-0": a sign is not part of the accepted syntax
    why = shown + " is negative; the range is 0 .. " + std::to_string(max);
    return false;
  }
  for (; i < text.size(); ++i) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (max - d) / 10) {
      why = shown + " is too large; the range is 0 .. " + std::to_string(max);
      return false;
    }
    v = v * 10 + d;
  }
  out = v;
  return true;
}

voxtral::Result<std::string> read_stdin() {
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
  if (std::ferror(stdin)) return voxtral::Status(voxtral::ErrorCode::kIoError, "cannot read the text from stdin");
  return text;
}

struct Options {
  std::vector<std::string> positional;
  bool list_voices = false;
  voxtral::TtsRequest request;
  int threads = 0;  // 0: the runtime's default
};

// Fills `options` from argv; returns 0, or the exit code of a usage error (2) or of --help (0
// after printing the usage, hence -1 to tell it apart).
int parse_args(int argc, char** argv, Options& options) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg.rfind("--", 0) != 0) {
      // "-" (stdin) and text that starts with a single dash are positional
      options.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") return -1;
    if (arg == "--list-voices") {
      options.list_voices = true;
      continue;
    }
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {  // --seed=7
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    if (arg != "--voice" && arg != "--seed" && arg != "--max-frames" && arg != "--threads") {
      return usage_error("unknown option '" + arg + "'");
    }
    if (!has_value) {
      if (i + 1 >= argc) return usage_error(arg + " needs a value");
      value = argv[++i];
    }
    std::string why;
    uint64_t n = 0;
    if (arg == "--voice") {
      options.request.voice = value;
    } else if (arg == "--seed") {
      if (!parse_unsigned(value, std::numeric_limits<uint64_t>::max(), n, why)) return usage_error("--seed: " + why);
      options.request.seed = n;
    } else if (arg == "--max-frames") {
      if (!parse_unsigned(value, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), n, why)) {
        return usage_error("--max-frames: " + why);
      }
      options.request.max_frames = static_cast<int64_t>(n);
    } else {
      if (!parse_unsigned(value, 1024, n, why)) return usage_error("--threads: " + why);
      if (n == 0) return usage_error("--threads: must be at least 1");
      options.threads = static_cast<int>(n);
    }
  }
  if (options.list_voices) {
    if (options.positional.size() != 1) return usage_error("--list-voices takes MODEL_DIR only");
  } else if (options.positional.size() != 3) {
    return usage_error(options.positional.empty() ? "" : "expected MODEL_DIR, TEXT and OUT.wav");
  }
  return 0;
}

int speak(int argc, char** argv) {
  Options options;
  if (const int code = parse_args(argc, argv, options); code != 0) {
    if (code != -1) return code;
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Threads before anything loads: the pool cannot be resized under a running program.
  if (options.threads > 0) {
    if (auto s = voxtral::set_num_threads(options.threads); !s.ok()) return fail(s);
  }
  const auto start = std::chrono::steady_clock::now();
  auto runner = voxtral::TtsRunner::load(options.positional[0]);
  if (!runner.ok()) return fail(runner.status());
  if (options.list_voices) {
    for (const std::string& name : (*runner)->voices()) std::printf("%s\n", name.c_str());
    std::fprintf(stderr, "(default: %s)\n", (*runner)->default_voice().c_str());
    return 0;
  }

  voxtral::TtsRequest& request = options.request;
  if (options.positional[1] == "-") {
    auto text = read_stdin();
    if (!text.ok()) return fail(text.status());
    request.text = std::move(*text);
  } else {
    request.text = options.positional[1];
  }
  // The session checks the voice and the text before the output file is created: a bad
  // request leaves no empty file behind.
  auto session = (*runner)->new_session(request);
  if (!session.ok()) return fail(session.status());

  const std::string& out_path = options.positional[2];
  const int rate = (*runner)->metadata().sample_rate;
  voxtral::cli::WavWriter out;
  if (auto s = out.open(out_path, rate); !s.ok()) return fail(s);
  // After a failure the file is closed as a valid WAV of the audio made so far; the message
  // says so, so that it is not taken for the whole text.
  auto partial = [&](const voxtral::Status& s) {
    const uint64_t made = out.samples_written();
    (void)out.close();
    char note[64];
    std::snprintf(note, sizeof note, " holds only the first %.2f s)", static_cast<double>(made) / rate);
    return fail(s, " (" + out_path + note);
  };
  while (!(*session)->done()) {
    auto chunk = (*session)->next();
    if (!chunk.ok()) return partial(chunk.status());
    // The chunks must tile the audio; a gap or an overlap would shift everything after it.
    if (chunk->first_sample < 0 || static_cast<uint64_t>(chunk->first_sample) != out.samples_written()) {
      return partial(voxtral::Status(voxtral::ErrorCode::kInternal,
                                     "a chunk starts at sample " + std::to_string(chunk->first_sample) + " after " +
                                         std::to_string(out.samples_written()) + " samples"));
    }
    if (auto s = out.append(chunk->samples.data(), chunk->samples.size()); !s.ok()) return partial(s);
  }
  const uint64_t samples = out.samples_written();
  if (auto s = out.close(); !s.ok()) return fail(s);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t utterances = (*session)->utterances();
  std::fprintf(stderr, "voxtral-speak: wrote %s: %.2f s of audio (%lld frames, %lld utterance%s) in %.1f s\n",
               out_path.c_str(), static_cast<double>(samples) / rate, static_cast<long long>((*session)->frames()),
               static_cast<long long>(utterances), utterances == 1 ? "" : "s", took);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // libvoxtral reports errors as values; what may still throw here is the standard library
  // (out of memory): report it like any other error instead of terminating.
  try {
    return speak(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "voxtral-speak: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "voxtral-speak: unknown error\n");
  }
  return 1;
}
