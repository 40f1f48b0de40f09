"""Limits on the HTTP socket, in one ASGI middleware: body size, a body that stops arriving,
and a client that stops reading a streamed response.

- A body larger than its route's limit is refused with 413: at once by its Content-Length,
  or when the bytes counted so far pass the limit (chunked uploads declare none).
- A body whose next part does not arrive within the idle timeout gets 408 (a slow-loris
  upload holds no model session, but it would hold a socket forever).
- A streamed response the client does not read for the idle timeout is abandoned: the send
  gives up, the response's generator is closed and its session freed, and the connection is
  dropped.

The errors raised while the body is read are ApiErrors (HTTPException subclasses), so FastAPI
passes them to the handlers in errors.py like any other request error.
"""

from __future__ import annotations

import logging

import anyio

from voxtral_native.server.errors import ApiError

log = logging.getLogger("voxtral_native.server")


class _SendTimeout(Exception):
    pass


class LimitsMiddleware:
    def __init__(self, app, body_limits: dict[str, int], default_limit: int, idle_timeout_s: float):
        self.app = app
        self.body_limits = body_limits  # path -> bytes
        self.default_limit = default_limit
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.body_limits.get(scope["path"], self.default_limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await ApiError(413, f"the request body is {int(value)} bytes; this route takes at most {limit}",
                               code="request_too_large").response()(scope, receive, send)  # fmt: skip
                return
        received, body_done = 0, False

        async def limited_receive():
            nonlocal received, body_done
            if body_done:  # after the body: disconnect listening, which may wait as long as the response runs
                return await receive()
            try:
                with anyio.fail_after(self.idle_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise ApiError(408, f"the request body stopped arriving for {self.idle_timeout_s:g} s",
                               code="request_timeout") from None  # fmt: skip
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    raise ApiError(413, f"the request body is over this route's limit of {limit} bytes",
                                   code="request_too_large")  # fmt: skip
            return message

        async def timed_send(message):
            try:
                with anyio.fail_after(self.idle_timeout_s):
                    await send(message)
            except TimeoutError:
                raise _SendTimeout() from None

        try:
            await self.app(scope, limited_receive, timed_send)
        except _SendTimeout:
            # The response had started; all that is left is to drop the connection (uvicorn
            # closes it when the app returns mid-response).
            log.warning("%s %s: the client read nothing for %g s; response abandoned", scope.get("method"),
                        scope["path"], self.idle_timeout_s)  # fmt: skip
