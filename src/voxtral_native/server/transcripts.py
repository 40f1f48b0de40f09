"""A transcription's pieces -> OpenAI's response formats: json, text, verbose_json, srt, vtt.

Times come from the decoder steps (one per 80 ms of audio; a piece's time is the audio time its
step closes), as `Transcriber.transcript` gives them for words. Segments are cut at sentence
ends and at pauses, so subtitles (srt, vtt) get one line per sentence; their texts concatenated
are the whole text, untouched.
"""

from __future__ import annotations

from voxtral_native.transcriber import Piece, Transcript

SENTENCE_END = tuple(".!?…。！？")
PAUSE_S = 1.0  # a gap this long between text pieces starts a new segment


def words(transcript: Transcript) -> list[dict]:
    return [{"word": w.text, "start": round(w.start_s, 3), "end": round(w.end_s, 3)} for w in transcript.words]


def segments(pieces: list[Piece], step_s: float) -> list[dict]:
    """Runs of text pieces, cut after a sentence end or before a pause of PAUSE_S; a piece
    spans step_s (the transcriber's seconds_per_step) from its time."""
    out: list[dict] = []
    text, tokens, start, end = "", [], 0.0, 0.0

    def close():
        nonlocal text, tokens
        if text:
            out.append({"id": len(out), "seek": 0, "start": round(start, 3), "end": round(end, 3), "text": text,
                        "tokens": tokens, "temperature": 0.0})  # fmt: skip
        text, tokens = "", []

    for p in pieces:
        if not p.text:
            continue
        if text and p.time_s - end >= PAUSE_S:
            close()
        if not text:
            start = p.time_s
        text += p.text
        tokens.append(p.token_id)
        end = p.time_s + step_s
        if text.rstrip().endswith(SENTENCE_END):
            close()
    close()
    return out


def _clock(seconds: float, decimal: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def srt(segs: list[dict]) -> str:
    blocks = [f"{i + 1}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{s['text'].strip()}\n"
              for i, s in enumerate(segs) if s["text"].strip()]  # fmt: skip
    return "\n".join(blocks)


def vtt(segs: list[dict]) -> str:
    blocks = [f"{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}\n{s['text'].strip()}\n"
              for s in segs if s["text"].strip()]  # fmt: skip
    return "WEBVTT\n\n" + "\n".join(blocks)


def usage(duration_s: float) -> dict:
    return {"type": "duration", "seconds": round(duration_s, 3)}


def verbose(transcript: Transcript, step_s: float, duration_s: float, language: str | None,
            granularities: set[str]) -> dict:  # fmt: skip
    """OpenAI's verbose_json. Segments carry no avg_logprob, compression_ratio or no_speech_prob:
    the model decodes greedily and computes none of them (made-up numbers would mislead)."""
    body = {"task": "transcribe", "language": language or "unknown", "duration": round(duration_s, 3),
            "text": transcript.text}
    if "segment" in granularities or not granularities:
        body["segments"] = segments(transcript.pieces, step_s)
    if "word" in granularities:
        body["words"] = words(transcript)
    body["usage"] = usage(duration_s)
    return body
