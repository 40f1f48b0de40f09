"""Streamed responses that own a model session, and server-sent events.

A streamed response's session must be freed however the response ends: finished, the client
gone mid-stream (Starlette cancels the generator), or gone before the first byte (the generator
never starts, so its own `finally` would never run). The response closes its generator and
gives the session's budget back when it returns, in all three cases.
"""

from __future__ import annotations

import json

from starlette.responses import StreamingResponse

from voxtral_native.server.budget import Reservation


class SessionStreamingResponse(StreamingResponse):
    def __init__(self, content, reservation: Reservation, **kwargs):
        super().__init__(content, **kwargs)
        self._reservation = reservation

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the generator's cleanup now (drops the session), not at GC
            self.body_iterator = None
            self._reservation.release()


def sse(event: dict) -> bytes:
    """One server-sent event as OpenAI sends them: a data line of JSON (no event name)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
