// voxtral-transcribe: speech-to-text from the command line, on libvoxtral alone.
//
//   voxtral-transcribe MODEL_DIR AUDIO.wav [AUDIO.wav...] [--stream] [--delay-ms N] [--threads N]
//
// MODEL_DIR is an artifact directory from `voxtral-native export stt`. --stream feeds the
// audio in 100 ms chunks, as a live source would, and prints text as it is decoded.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/wav.h"
#include "voxtral/voxtral.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: voxtral-transcribe MODEL_DIR AUDIO.wav [AUDIO.wav...] [--stream] [--delay-ms N] [--threads N]\n");
  return 2;
}

int fail(const voxtral::Status& status) {
  std::fprintf(stderr, "voxtral-transcribe: %s\n", status.to_string().c_str());
  return 1;
}

bool parse_int(const char* text, int& out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0') return false;
  out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  bool stream = false;
  voxtral::SttOptions options;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--stream") {
      stream = true;
    } else if ((arg == "--delay-ms" || arg == "--threads") && i + 1 < argc) {
      if (!parse_int(argv[++i], arg == "--threads" ? threads : options.delay_ms)) return usage();
    } else if (arg == "-h" || arg == "--help" || arg.rfind("--", 0) == 0) {
      return usage();
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() < 2) return usage();
  if (threads > 0) {
    if (auto s = voxtral::set_num_threads(threads); !s.ok()) return fail(s);
  }
  auto runner = voxtral::SttRunner::load(positional[0], options);
  if (!runner.ok()) return fail(runner.status());
  const int rate = (*runner)->metadata().sample_rate;

  for (size_t f = 1; f < positional.size(); ++f) {
    auto wav = voxtral::cli::read_wav(positional[f]);
    if (!wav.ok()) return fail(wav.status());
    if (wav->sample_rate != rate) {
      return fail(voxtral::Status(voxtral::ErrorCode::kInvalidArgument,
                                  positional[f] + " is " + std::to_string(wav->sample_rate) + " Hz; the model takes " +
                                      std::to_string(rate) + " Hz (resample it, e.g. sox in.wav -r " +
                                      std::to_string(rate) + " out.wav)"));
    }
    auto session = (*runner)->new_session();
    if (!session.ok()) return fail(session.status());
    const size_t chunk = stream ? static_cast<size_t>(rate / 10) : wav->samples.size();
    for (size_t i = 0; i < wav->samples.size(); i += chunk) {
      const size_t n = std::min(chunk, wav->samples.size() - i);
      if (auto s = (*session)->feed(wav->samples.data() + i, n); !s.ok()) return fail(s);
      for (const auto& piece : (*session)->drain()) std::fputs(piece.text.c_str(), stdout);
      std::fflush(stdout);
    }
    if (auto s = (*session)->flush(); !s.ok()) return fail(s);
    for (const auto& piece : (*session)->drain()) std::fputs(piece.text.c_str(), stdout);
    std::fputs("\n", stdout);
  }
  return 0;
}
