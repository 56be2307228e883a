"""The gateway's errors and the one JSON error shape, ``{"statusCode", "message", "error"}``
(Nest's), for everything: validation, HTTP, remote, transport and unexpected errors.

A remote service's structured 4xx passes through with its message, and so does its 503 (the
object store behind it is down: worth a retry); its other 5xx, or an answer that is not the
contract's, is our upstream's fault (502); unreachable is 503; too slow is 504. No stack trace
ever reaches a client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from vidmesh.transport import RemoteError, RequestTimeout, ServiceUnavailable, status_error

logger = structlog.get_logger("vidmesh_api_gateway.errors")

BEARER_CHALLENGE: dict[str, str] = {"WWW-Authenticate": "Bearer"}


class GatewayError(Exception):
    """The root of the gateway's errors: an HTTP status, a message and extra headers."""

    status_code: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal server error"

    def __init__(self, message: Any = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.headers = dict(headers or {})
        super().__init__(str(self.message))


class BadRequest(GatewayError):
    status_code = 400
    default_message = "Bad request"


class Unauthorized(GatewayError):
    """401 with the ``WWW-Authenticate: Bearer`` challenge RFC 6750 asks for."""

    status_code = 401
    default_message = "Unauthorized"

    def __init__(self, message: Any = None) -> None:
        super().__init__(message, headers=BEARER_CHALLENGE)


class PayloadTooLarge(GatewayError):
    status_code = 413
    default_message = "The video is larger than the upload limit"


class UnsupportedMediaType(GatewayError):
    status_code = 415
    default_message = "Only MP4 and WebM videos are accepted"


class RangeNotSatisfiable(GatewayError):
    status_code = 416
    default_message = "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Range": f"bytes */{size}"})


class BadGateway(GatewayError):
    """A service answered, but not as its contract says."""

    status_code = 502
    default_message = "Bad gateway"


class StoreUnavailable(GatewayError):
    """The object store did not answer the gateway (or failed mid-transfer)."""

    status_code = 503
    default_message = "The video store is unavailable"


class TooManyUploads(GatewayError):
    """Every slot for an upload streamed through the gateway is taken; try again shortly."""

    status_code = 503
    default_message = "Too many uploads in progress; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def error_response(
    status_code: int, message: Any, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one error shape as a response."""
    body = status_error(status_code, message, **extra)
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def validation_messages(errors: Sequence[Any]) -> list[str]:
    """pydantic's errors as Nest-style strings: ``"body.email: value is not a valid email"``."""
    messages = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        messages.append(f"{location}: {message}" if location else message)
    return messages


def remote_error_response(error: RemoteError) -> JSONResponse:
    status = error.status_code
    if status is not None and (400 <= status < 500 or status == 503):
        return error_response(status, _remote_message(error))
    logger.warning("remote_error", pattern=error.pattern, error=error.error)
    return error_response(502, "Bad gateway")


def _remote_message(error: RemoteError) -> Any:
    message = error.error.get("message") if isinstance(error.error, dict) else None
    return message if isinstance(message, str | list) else error.message


async def _on_validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(item.get("type") == "json_invalid" for item in errors):
        return error_response(400, "Malformed JSON body")
    return error_response(400, validation_messages(errors))


async def _on_http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    message: Any = error.detail
    if error.status_code == 404 and message == "Not Found":  # no route: say which, as Nest
        message = f"Cannot {request.method} {request.url.path}"
    return error_response(error.status_code, message, error.headers)


async def _on_gateway(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GatewayError)
    return error_response(error.status_code, error.message, error.headers)


async def _on_remote(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RemoteError)
    return remote_error_response(error)


async def _on_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("service_unavailable", path=request.url.path, error=str(error))
    return error_response(503, "A service the gateway needs is unavailable")


async def _on_timeout(request: Request, error: Exception) -> JSONResponse:
    logger.warning("service_timeout", path=request.url.path, error=str(error))
    return error_response(504, "A service the gateway needs did not answer in time")


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.error("request_failed", path=request.url.path, exc_info=error)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the one shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(GatewayError, _on_gateway)
    app.add_exception_handler(RemoteError, _on_remote)
    app.add_exception_handler(ServiceUnavailable, _on_unavailable)
    app.add_exception_handler(RequestTimeout, _on_timeout)
    app.add_exception_handler(Exception, _on_unexpected)
