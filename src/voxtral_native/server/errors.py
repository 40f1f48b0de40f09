"""Errors as OpenAI sends them: a status code and {"error": {"message", "type", "param", "code"}}.

Every failure a client can see goes through here: our ApiError, voxtral_native's exceptions
(bad audio, bad text: 400), FastAPI's validation errors (400 instead of its 422 shape),
Starlette's 404 / 405, and anything unexpected (500 with a generic message: the traceback is
logged, never sent).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxtral_native.errors import InvalidArgumentError, OutOfRangeError, VoxtralError

log = logging.getLogger("voxtral_native.server")

# OpenAI's error types by status (their docs name these; clients switch on them).
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


class ApiError(StarletteHTTPException):
    """A failure to report to the client as OpenAI does. An HTTPException, so that FastAPI lets
    one raised while it reads a request body through to our handler instead of its own 400."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(status, message, headers)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    @property
    def type(self) -> str:
        return _TYPE_BY_STATUS.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param, code)


def from_voxtral(e: VoxtralError, param: str | None = None) -> ApiError:
    """voxtral_native's exception for the client's input -> 400; anything else is ours -> 500."""
    if isinstance(e, (InvalidArgumentError, OutOfRangeError)):
        return bad_request(str(e), param)
    log.error("voxtral_native failed: %s", e, exc_info=e)
    return ApiError(500, "the model failed to run this request; see the server's log", code="model_error")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return e.response()

    @app.exception_handler(VoxtralError)
    async def _voxtral_error(request: Request, e: VoxtralError):
        return from_voxtral(e).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        # One message for the first problem, naming the parameter as OpenAI does ("input").
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "form")]
        param = ".".join(loc) or None
        message = first.get("msg", "invalid request")
        if first.get("type") == "missing":
            message = f"missing required parameter: '{param}'"
        elif first.get("type") == "extra_forbidden":
            message = f"unrecognized request argument supplied: {param}"
        elif first.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif param:
            message = f"invalid '{param}': {message}"
        return ApiError(
            400, message, param, "invalid_value" if first.get("type") != "missing" else "missing_parameter"
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        message = {
            404: f"no route {request.url.path}",
            405: f"method {request.method} not allowed on {request.url.path}",
        }
        return ApiError(e.status_code, message.get(e.status_code, str(e.detail)),
                        headers=getattr(e, "headers", None)).response()  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=e)
        return ApiError(500, "internal server error; see the server's log", code="internal_error").response()
