"""API key checks: `Authorization: Bearer KEY` on every API route and on the WebSocket.

Browsers cannot set headers on a WebSocket, so the socket also takes the key the way OpenAI's
own browser clients pass it: as a subprotocol `openai-insecure-api-key.KEY` (the page at `/`
does this; the name says what it is: the key is visible to the page's scripts).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from voxtral_native.server.errors import ApiError

WS_KEY_PROTOCOL = "openai-insecure-api-key."


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def key_matches(expected: str, given: str | None) -> bool:
    # Constant time: the comparison says nothing about how much of a wrong key was right.
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def check_http(expected: str | None, request: Request) -> None:
    if expected is None:
        return
    given = _bearer(request.headers.get("authorization"))
    if given is None:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer KEY'", code="missing_api_key")
    if not key_matches(expected, given):
        raise ApiError(401, "incorrect API key provided", code="invalid_api_key")


def websocket_key(headers, subprotocols: list[str]) -> tuple[str | None, str | None]:
    """(the key a socket offers, by header or subprotocol; the subprotocol to answer with)."""
    given = _bearer(headers.get("authorization"))
    if given is not None:
        return given, None
    for p in subprotocols:
        if p.startswith(WS_KEY_PROTOCOL):
            return p[len(WS_KEY_PROTOCOL) :], p
    return None, None
