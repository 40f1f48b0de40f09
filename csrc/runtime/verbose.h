// VOXTRAL_VERBOSE=1: libvoxtral says on stderr when it loads a method (which, from where,
// how long), to see when and how often weights are loaded and packed.
#pragma once

#include <cstdlib>
#include <cstring>

namespace voxtral {

// An on/off switch from the environment: set, non-empty and not "0".
inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

inline bool verbose() {
  static const bool on = env_flag("VOXTRAL_VERBOSE");
  return on;
}

}  // namespace voxtral
