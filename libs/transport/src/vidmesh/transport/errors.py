"""One error tree for the transporter layer.

Handlers raise :class:`RpcError` (or a subclass) to send a structured ``err`` to the caller.
Callers receive :class:`RemoteError`, :class:`RequestTimeout` or :class:`ServiceUnavailable`.
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus
from typing import Any

NO_MESSAGE_HANDLER = "There is no matching message handler defined in the remote service."
INTERNAL_ERROR_MESSAGE = "Internal server error"


class TransportError(Exception):
    """Root of every error raised by vidmesh.transport."""


class RpcError(TransportError):
    """Raised by a handler: ``error`` is sent to the caller as the packet's ``err``.

    ``RpcError.status(404, "Video not found")`` gives Nest's HTTP-style shape
    ``{"statusCode": 404, "message": "Video not found", "error": "Not Found"}``.
    """

    def __init__(self, error: Any) -> None:
        self.error = error
        super().__init__(error.get("message", error) if isinstance(error, dict) else error)

    @classmethod
    def status(cls, status_code: int, message: Any, **extra: Any) -> RpcError:
        return cls(status_error(status_code, message, **extra))


def status_error(status_code: int, message: Any, **extra: Any) -> dict[str, Any]:
    """The ``{"statusCode", "message", "error"}`` body Nest's HttpException uses."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    return {"statusCode": status_code, "message": message, "error": phrase, **extra}


class PayloadValidationError(RpcError):
    """The payload did not match the handler's type hints; the handler was not called."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(status_error(400, message, errors=errors))


class RemoteError(TransportError):
    """The remote handler answered with ``err``; ``error`` holds it as received."""

    def __init__(self, error: Any, *, pattern: Any = None) -> None:
        self.error = error
        self.pattern = pattern
        super().__init__(f"remote error for pattern {pattern!r}: {error!r}")

    @property
    def status_code(self) -> int | None:
        """The ``statusCode`` of a structured error, if it has one."""
        if isinstance(self.error, dict):
            code = self.error.get("statusCode")
            if isinstance(code, int) and not isinstance(code, bool):  # JSON true is no status
                return code
        return None

    @property
    def message(self) -> str:
        if isinstance(self.error, dict):
            return str(self.error.get("message", self.error))
        return str(self.error)


class RequestTimeout(TransportError):
    """No complete answer arrived within the call's timeout."""


class ServiceUnavailable(TransportError):
    """The service could not be reached (connect refused, timed out, or TLS failed)."""


class ConnectionLost(ServiceUnavailable):
    """The connection closed while the call was in flight; it may or may not have run."""


class CloseReason(StrEnum):
    """Why a connection was closed by our side."""

    CORRUPTED_LENGTH = "corrupted_length"
    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_JSON = "invalid_json"
    INVALID_PACKET = "invalid_packet"
    INCOMPLETE_FRAME_TIMEOUT = "incomplete_frame_timeout"
    INCOMPLETE_BYTES_EXCEEDED = "incomplete_bytes_exceeded"
    IDLE_TIMEOUT = "idle_timeout"
    SEND_BUFFER_EXCEEDED = "send_buffer_exceeded"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    PEER_NOT_ADMITTED = "peer_not_admitted"
    """The peer's certificate names no caller this server admits (identity.py)."""
    SHUTDOWN = "shutdown"
    CLIENT_CLOSED = "client_closed"


class FrameError(TransportError):
    """Bytes that are not a valid ``<length>#<json>`` frame; the connection must close."""

    def __init__(self, reason: CloseReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        self.packets: list[Any] = []
        """Packets that arrived whole before the bad frame in the same read."""
        super().__init__(f"{reason.value}: {detail}")
