// VOXTRAL_PROFILE=1: every Program::execute is timed, by method and by the shape of its
// first input (a decode call over 5 positions apart from one over 1), and the totals go to
// stderr when the process exits. For finding where a stream's time goes without a profiler;
// off, it costs one branch per call.
#pragma once

#include <string>

namespace voxtral {

bool profiling();
// Adds one call of `key` (method and first input's shape) that took `seconds`.
void profile_add(const std::string& key, double seconds);

}  // namespace voxtral
