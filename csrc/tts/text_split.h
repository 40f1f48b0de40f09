// Long text -> utterances. The model reads one utterance per prompt; past a few hundred
// characters every public implementation drifts or truncates, so a session speaks long text
// as a series of utterances that share the voice and the generator. Splits fall at sentence
// ends (. ! ? … before whitespace, 。！？ anywhere, line breaks; closing quotes and brackets
// after the mark stay with their sentence); a sentence too long for one prompt is split at
// clause marks, then at spaces, then between characters. Whole sentences are packed into one
// utterance while they fit `target_tokens`, so short sentences do not each pay for a prompt.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "voxtral/status.h"

namespace voxtral::tts {

// `count_tokens(text)`: tokens of `text` (the tokenizer's). Each utterance has at most
// `max_tokens` tokens and no leading or trailing whitespace (Unicode's, U+00A0 and U+3000
// among it, and U+FEFF); none is empty. Text made only of whitespace gives no utterances (the
// runner's "empty text" error). 1 <= target_tokens <= max_tokens. `text` is UTF-8 (the
// runner checks); other bytes are kept but never taken for spaces or marks.
Result<std::vector<std::string>> split_utterances(std::string_view text,
                                                  const std::function<Result<int>(std::string_view)>& count_tokens,
                                                  int max_tokens, int target_tokens);

}  // namespace voxtral::tts
