"""WS /v1/realtime: live transcription in the shape of OpenAI's Realtime API (GA events, a
session of type "transcription").

Client events handled:
  session.update               audio.input.format {type: "audio/pcm", rate: any of 8000..192000 Hz
                               (OpenAI's only rate, 24000, is the default)}; transcription.model /
                               language; turn_detection, noise_reduction and include must stay null /
                               empty (the model transcribes continuously, no VAD turns)
  input_audio_buffer.append    {audio: base64 PCM16 little-endian mono at the session's rate}
  input_audio_buffer.commit    ends the item: the rest of its text, then completed
  input_audio_buffer.clear     drops the item's audio and session
Server events sent:
  session.created, session.updated, input_audio_buffer.committed, input_audio_buffer.cleared,
  conversation.item.input_audio_transcription.delta (as the text is decoded, while audio
  arrives), conversation.item.input_audio_transcription.completed, error.

An item is the audio between two commits, transcribed by one session of the loaded model; the
first append opens it (and takes its share of the session budget), the commit or clear frees
it. An item may run for hours: the model's caches are rings. Bad events get an `error` event
and the socket stays usable; a client that goes away, goes silent for the idle timeout or stops
reading frees its session at once (after the native call in hand).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid

import anyio
import numpy as np
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from voxtral_native.errors import VoxtralError
from voxtral_native.server.auth import key_matches, websocket_key
from voxtral_native.server.errors import ApiError
from voxtral_native.server.transcripts import usage

router = APIRouter()
log = logging.getLogger("voxtral_native.server")

DEFAULT_RATE = 24000  # OpenAI's PCM rate
MIN_RATE, MAX_RATE = 8000, 192000
QUEUED_MESSAGES = 8  # client events read ahead of the model; past it the socket is not read (TCP backpressure)


class _EventError(Exception):
    """A client event the server refuses: sent back as an `error` event, the socket stays open."""

    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None, event_id=None):
        super().__init__(message)
        self.message, self.code, self.param, self.event_id = message, code, param, event_id


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket):
    state = ws.app.state.served
    offered = list(ws.scope.get("subprotocols") or [])
    given, _ = websocket_key(ws.headers, offered)
    refusal = None
    if state.api_key is not None and not key_matches(state.api_key, given):
        refusal = ApiError(
            401, "missing or incorrect API key (send 'Authorization: Bearer KEY')", code="invalid_api_key"
        )
    elif state.transcriber is None:
        refusal = ApiError(404, "this server has no speech-to-text model", code="model_not_found")
    elif ws.query_params.get("model") not in (None, "", state.stt_id):
        refusal = ApiError(404, f"the model '{ws.query_params.get('model')}' does not exist here; this server "
                           f"transcribes with '{state.stt_id}'", "model", "model_not_found")  # fmt: skip
    if refusal is not None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(refusal.response())  # the status and OpenAI's error body, before accept
        else:
            await ws.close(code=1008, reason=refusal.message[:120])
        return
    # A browser that offered subprotocols (the key one among them) needs one chosen back.
    chosen = "realtime" if "realtime" in offered else (offered[0] if offered else None)
    await ws.accept(subprotocol=chosen)
    await _Connection(ws, state).run()


class _Item:
    """The audio since the last commit: one transcriber session and its budget reservation."""

    def __init__(self, session, reservation, rate: int):
        self.id = _new_id("item")
        self.session = session
        self.reservation = reservation
        self.rate = rate
        self.text: list[str] = []
        self.samples = 0

    def close(self) -> None:
        self.session = None  # the native session goes with its last reference
        self.reservation.release()


class _Connection:
    def __init__(self, ws: WebSocket, state):
        self.ws = ws
        self.state = state
        self.transcriber = state.transcriber
        self.idle_s = state.config.idle_timeout_s
        self.id = _new_id("sess")
        self.rate = DEFAULT_RATE
        self.language: str | None = None
        self.item: _Item | None = None  # the worker's
        self.previous_item_id: str | None = None
        self.open_rate: int | None = None  # the receiver's view: the rate of audio appended since the last commit
        self.busy = False  # the worker is inside a native call
        self._send_lock = anyio.Lock()

    # -- sending
    async def send(self, event: dict) -> None:
        event = {"event_id": _new_id("event"), **event}
        async with self._send_lock:
            with anyio.fail_after(self.idle_s):  # a client that stops reading is dropped, not waited for
                await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def send_error(self, message: str, code: str, param: str | None = None, event_id=None,
                         type_: str = "invalid_request_error") -> None:  # fmt: skip
        await self.send({"type": "error", "error": {"type": type_, "code": code, "message": message, "param": param,
                                                    "event_id": event_id}})  # fmt: skip

    def session_config(self) -> dict:
        return {
            "type": "transcription", "id": self.id, "object": "realtime.transcription_session",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": self.rate},
                "transcription": {"model": self.state.stt_id, "language": self.language},
                "noise_reduction": None, "turn_detection": None,
            }},
            "include": [],
        }  # fmt: skip

    # -- the two halves: reading client events, running the model
    async def run(self) -> None:
        send_q, receive_q = anyio.create_memory_object_stream(QUEUED_MESSAGES)
        try:
            await self.send({"type": "session.created", "session": self.session_config()})
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._work, receive_q)
                await self._read(send_q)
                tg.cancel_scope.cancel()  # the client left or timed out: stop the model at once
        except Exception as e:
            if not _client_gone(e):  # a bug of ours: logged, never sent as a traceback
                log.error("realtime connection failed", exc_info=e)
        finally:
            if self.item is not None:
                self.item.close()
                self.item = None
        try:
            await self.ws.close()
        except (WebSocketDisconnect, RuntimeError, OSError):  # already closed (by the client, or a refused send)
            pass

    async def _read(self, queue) -> None:
        """Reads client events until the client leaves or goes idle; queues work for _work."""
        while True:
            try:
                with anyio.fail_after(self.idle_s):
                    message = await self.ws.receive()
            except TimeoutError:
                if self.busy:
                    continue  # the model is still on the audio sent: the client is waiting, not idle
                await self.send_error(f"no event for {self.idle_s:g} s; closing", "idle_timeout", type_="timeout")
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                work = self._parse(message)
            except _EventError as e:
                await self.send_error(e.message, e.code, e.param, e.event_id)
                continue
            if work is not None:
                await queue.send(work)

    def _parse(self, message: dict):
        """A client message -> work for the model (or None when handled here); _EventError if refused."""
        if message.get("text") is None:
            raise _EventError("binary frames are not part of this protocol; send JSON events as text", "invalid_frame")
        try:
            event = json.loads(message["text"])
        except ValueError as e:
            raise _EventError(f"the event is not valid JSON ({e})", "invalid_json") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise _EventError("an event must be a JSON object with a string 'type'", "invalid_event", "type")
        event_id = event.get("event_id")
        kind = event["type"]
        try:
            if kind == "input_audio_buffer.append":
                samples = _pcm16(event.get("audio"))
                if self.open_rate is None:
                    self.open_rate = self.rate
                return ("audio", samples, self.rate) if samples.size else None
            if kind == "input_audio_buffer.commit":
                if self.open_rate is None:
                    raise _EventError("the input audio buffer is empty: append audio before committing",
                                      "input_audio_buffer_commit_empty")  # fmt: skip
                self.open_rate = None
                return ("commit", event_id)
            if kind == "input_audio_buffer.clear":
                self.open_rate = None
                return ("clear", event_id)
            if kind == "session.update":
                self._update(event.get("session"))
                return ("updated", event_id)
            raise _EventError(f"unsupported event type '{kind}' (this server runs transcription sessions: "
                              "session.update, input_audio_buffer.append / commit / clear)", "unknown_event", "type")  # fmt: skip
        except _EventError as e:
            e.event_id = event_id
            raise

    def _update(self, session) -> None:
        """Applies a session.update, all of it or none of it."""
        if not isinstance(session, dict):
            raise _EventError("session.update needs a 'session' object", "invalid_value", "session")
        unknown = set(session) - {"type", "audio", "include", "id", "object"}
        if unknown:
            raise _EventError(f"unsupported session fields {sorted(unknown)}", "unknown_parameter", "session")
        if session.get("type", "transcription") != "transcription":
            raise _EventError("this server runs transcription sessions only (session.type 'transcription')",
                              "invalid_value", "session.type")  # fmt: skip
        if session.get("include"):
            raise _EventError(
                "include is not supported (no log probabilities)", "unsupported_parameter", "session.include"
            )
        audio_in = (session.get("audio") or {}).get("input") or {}
        if not isinstance(audio_in, dict):
            raise _EventError("session.audio.input must be an object", "invalid_value", "session.audio.input")
        for field in ("turn_detection", "noise_reduction"):
            if audio_in.get(field) is not None:
                raise _EventError(f"{field} is not supported: the model transcribes continuously; set it to null",
                                  "unsupported_parameter", f"session.audio.input.{field}")  # fmt: skip
        rate, language = self.rate, self.language
        fmt = audio_in.get("format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type", "audio/pcm") != "audio/pcm":
                raise _EventError("only audio/pcm (16-bit little-endian mono) is supported", "unsupported_format",
                                  "session.audio.input.format.type")  # fmt: skip
            rate = fmt.get("rate", rate)
            if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
                raise _EventError(f"rate must be a whole number of Hz in [{MIN_RATE}, {MAX_RATE}], got {rate!r}",
                                  "invalid_value", "session.audio.input.format.rate")  # fmt: skip
            if self.open_rate is not None and rate != self.open_rate:
                raise _EventError("the rate cannot change while appended audio is uncommitted; commit or clear first",
                                  "invalid_value", "session.audio.input.format.rate")  # fmt: skip
        transcription = audio_in.get("transcription")
        if transcription is not None:
            if not isinstance(transcription, dict):
                raise _EventError(
                    "transcription must be an object", "invalid_value", "session.audio.input.transcription"
                )
            if transcription.get("model") not in (None, "", self.state.stt_id):
                raise _EventError(f"the model '{transcription['model']}' does not exist here; this server transcribes "
                                  f"with '{self.state.stt_id}'", "model_not_found",
                                  "session.audio.input.transcription.model")  # fmt: skip
            if transcription.get("prompt"):
                raise _EventError("this model takes no prompt", "unsupported_parameter",
                                  "session.audio.input.transcription.prompt")  # fmt: skip
            language = transcription.get("language", language)
        self.rate, self.language = rate, language

    async def _work(self, queue) -> None:
        """Runs the model on queued work in order, sending the text as it comes."""
        pending = None
        async with queue:
            while True:
                work = pending if pending is not None else await queue.receive()
                pending = None
                if work[0] == "audio":
                    chunks, rate = [work[1]], work[2]
                    while True:  # audio that queued up while the model ran goes in one native call
                        try:
                            nxt = queue.receive_nowait()
                        except anyio.WouldBlock:
                            break
                        if nxt[0] != "audio" or nxt[2] != rate:
                            pending = nxt
                            break
                        chunks.append(nxt[1])
                    await self._feed(np.concatenate(chunks), rate)
                elif work[0] == "commit":
                    await self._commit()
                elif work[0] == "clear":
                    if self.item is not None:
                        self.item.close()
                        self.item = None
                    await self.send({"type": "input_audio_buffer.cleared"})
                elif work[0] == "updated":
                    await self.send({"type": "session.updated", "session": self.session_config()})

    async def _native(self, fn):
        self.busy = True
        try:
            return await anyio.to_thread.run_sync(fn)
        finally:
            self.busy = False

    async def _feed(self, samples: np.ndarray, rate: int) -> None:
        if self.item is None:
            try:
                reservation = self.state.budget.reserve("stt", self.transcriber.session_memory_bytes)
            except ApiError as e:
                await self.send_error(e.message, e.code or "server_at_capacity", type_=e.type)
                return
            try:  # off the event loop: a session allocates its caches
                session = await self._native(self.transcriber.session)
            except BaseException:
                reservation.release()
                raise
            self.item = _Item(session, reservation, rate)
        item = self.item

        def feed():
            item.session.feed(samples, rate)
            return item.session.drain()

        try:
            pieces = await self._native(feed)
        except VoxtralError as e:
            await self.send_error(str(e), "invalid_value")
            return
        item.samples += samples.size
        await self._deltas(item, pieces)

    async def _deltas(self, item: _Item, pieces) -> None:
        for p in pieces:
            if p.text:
                item.text.append(p.text)
                await self.send({"type": "conversation.item.input_audio_transcription.delta", "item_id": item.id,
                                 "content_index": 0, "delta": p.text})  # fmt: skip

    async def _commit(self) -> None:
        item = self.item
        if item is None:  # the append that opened it was refused (capacity, bad audio)
            await self.send_error("nothing to commit: the audio of this item was not accepted",
                                  "input_audio_buffer_commit_empty")  # fmt: skip
            return
        await self.send({"type": "input_audio_buffer.committed", "item_id": item.id,
                         "previous_item_id": self.previous_item_id})  # fmt: skip
        try:
            pieces = await self._native(item.session.flush)
        except VoxtralError as e:
            await self.send({"type": "conversation.item.input_audio_transcription.failed", "item_id": item.id,
                             "content_index": 0, "error": {"type": "server_error", "code": "model_error",
                                                           "message": str(e), "param": None}})  # fmt: skip
            pieces = None
        if pieces is not None:
            await self._deltas(item, pieces)
            await self.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": item.id,
                             "content_index": 0, "transcript": "".join(item.text),
                             "usage": usage(item.samples / item.rate)})  # fmt: skip
        self.previous_item_id = item.id
        item.close()
        self.item = None


def _client_gone(e: BaseException) -> bool:
    """The client left (or stopped reading past the timeout), maybe reported by several tasks at once."""
    if isinstance(e, (WebSocketDisconnect, TimeoutError, OSError)):
        return True
    inner = getattr(e, "exceptions", None)  # an exception group from the task group
    return bool(inner) and all(_client_gone(x) for x in inner)


def _pcm16(audio) -> np.ndarray:
    if not isinstance(audio, str):
        raise _EventError("input_audio_buffer.append needs 'audio': base64 PCM16", "invalid_value", "audio")
    try:
        raw = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise _EventError("'audio' is not valid base64", "invalid_value", "audio") from None
    if len(raw) % 2:
        raise _EventError("'audio' must be whole 16-bit samples (an even number of bytes)", "invalid_value", "audio")
    return np.frombuffer(raw, dtype="<i2")
