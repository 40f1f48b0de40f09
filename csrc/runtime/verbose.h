// VOXTRAL_VERBOSE=1: libvoxtral says on stderr when it loads a method (which, from where,
// how long), to see when and how often weights are loaded and packed.
#pragma once

#include <cstdlib>
#include <cstring>

namespace voxtral {

inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("VOXTRAL_VERBOSE");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace voxtral
