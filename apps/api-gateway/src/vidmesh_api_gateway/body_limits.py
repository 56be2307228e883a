"""Request body caps, checked before a route parses anything: a declared ``Content-Length``
over the cap is refused at once, and the bytes that arrive (chunked or not) are counted, so a
30 MiB JSON body never reaches the JSON parser. 413 in the one error shape.

A pure ASGI middleware (one counter per request, no copy of the body). The streamed upload,
``POST /api/videos``, is left to its own limit (``max_upload_bytes``, counted by the multipart
parser in uploads.py).
"""

from __future__ import annotations

from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidmesh_api_gateway.errors import error_response

AUTH_PREFIX: Final = "/api/auth/"
STREAMED_UPLOAD: Final = ("POST", "/api/videos")
WITHOUT_BODY: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyLimits:
    """Caps a request body at ``auth_bytes`` under ``/api/auth/``, ``other_bytes`` elsewhere."""

    def __init__(self, app: ASGIApp, *, auth_bytes: int, other_bytes: int) -> None:
        self.app = app
        self.auth_bytes = auth_bytes
        self.other_bytes = other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in WITHOUT_BODY:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (scope["method"], path.rstrip("/")) == STREAMED_UPLOAD:
            await self.app(scope, receive, send)
            return
        cap = self.auth_bytes if path.startswith(AUTH_PREFIX) else self.other_bytes
        if _declared_length(scope) > cap:
            await error_response(413, _message(cap))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > cap:
                # An HTTPException: FastAPI passes it through its body reading (another
                # error there would become a 400), and errors.py answers it in the shape.
                raise HTTPException(413, _message(cap))
            return message

        await self.app(scope, counted, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _message(cap: int) -> str:
    return f"The request body is larger than {cap} bytes"
