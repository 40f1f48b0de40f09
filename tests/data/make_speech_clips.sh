#!/usr/bin/env bash
# Regenerates the committed speech clips (16 kHz mono 16-bit WAV) from Debian's
# espeak-ng and flite (apt-get install espeak-ng flite sox). Deterministic for a given
# package version; the clips are committed so tests need neither program.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

espeak-ng -v en-us -s 150 -w "$tmp/a.wav" \
  "The quick brown fox jumps over the lazy dog. Streaming speech recognition turns audio into text as you speak."
sox "$tmp/a.wav" -r 16000 -c 1 -b 16 speech_en_espeak.wav

flite -voice slt -t "Hello world. This sentence was spoken by a different synthesizer, for testing." -o "$tmp/b.wav"
sox "$tmp/b.wav" -r 16000 -c 1 -b 16 speech_en_flite.wav

espeak-ng -v fr -s 150 -w "$tmp/c.wav" "Bonjour tout le monde. Ceci est un court essai en français."
sox "$tmp/c.wav" -r 16000 -c 1 -b 16 speech_fr_espeak.wav

for f in speech_*.wav; do printf '%s: %s s\n' "$f" "$(soxi -D "$f")"; done
