// Strict base64 (RFC 4648, standard alphabet, '=' padding required), as tekken.json
// stores token bytes. Whitespace, URL-safe characters, missing or misplaced padding and
// non-zero trailing bits are all refused.
#pragma once

#include <string>
#include <string_view>

namespace voxtral::text {

// Appends the decoded bytes of `in` to `out`; false (out unchanged) if `in` is not strict base64.
bool base64_decode(std::string_view in, std::string& out);

}  // namespace voxtral::text
