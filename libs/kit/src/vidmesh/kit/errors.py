"""The root of every service's domain errors.

A service raises ``VideoNotFound()``; the transport sends the caller Nest's
``{"statusCode": 404, "message": "Video not found", "error": "Not Found"}``, and the gateway
maps that status to its HTTP answer. No other translation layer is needed.
"""

from __future__ import annotations

from typing import ClassVar

from vidmesh.transport import RpcError, status_error


class ServiceError(RpcError):
    """A domain error: ``status_code`` says what the caller did wrong (or 5xx: we did)."""

    status_code: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(status_error(self.status_code, message or self.default_message))
