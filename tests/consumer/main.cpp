// voxtral_consumer PROGRAM.pte: loads a program with the installed libvoxtral, lists its
// methods and runs `forward` on ones shaped by the program's first input.
#include <voxtral/voxtral.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PROGRAM.pte\n", argv[0]);
    return 2;
  }
  std::printf("libvoxtral %s\n", voxtral::version());
  auto program = voxtral::Program::load(argv[1]);
  if (!program.ok()) {
    std::fprintf(stderr, "error: %s\n", program.status().to_string().c_str());
    return 1;
  }
  for (const auto& name : (*program)->method_names()) std::printf("method %s\n", name.c_str());
  voxtral::FloatTensor x{{2, 4}, std::vector<float>(8, 1.0f)};
  auto out = (*program)->run("forward", {x});
  if (!out.ok()) {
    std::fprintf(stderr, "error: %s\n", out.status().to_string().c_str());
    return 1;
  }
  std::printf("forward:");
  for (float v : (*out)[0].data) std::printf(" %g", v);
  std::printf("\n");
  return 0;
}
