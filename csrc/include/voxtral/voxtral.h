// libvoxtral: Mistral's Voxtral speech models on the ExecuTorch runtime.
//
//   #include <voxtral/voxtral.h>
//   auto program = voxtral::Program::load("model/stt.pte");
//   if (!program.ok()) { std::cerr << program.status().to_string() << "\n"; return 1; }
//
// CMake: find_package(voxtral REQUIRED); target_link_libraries(app PRIVATE voxtral::voxtral)
#pragma once

#include "voxtral/bf16.h"
#include "voxtral/export.h"
#include "voxtral/log_mel.h"
#include "voxtral/program.h"
#include "voxtral/runtime.h"
#include "voxtral/status.h"
#include "voxtral/stt.h"
#include "voxtral/tokenizer.h"
#include "voxtral/tts.h"
