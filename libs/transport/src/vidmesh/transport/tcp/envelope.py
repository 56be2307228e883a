"""The packet shapes of Nest's TCP transporter.

Request ``{"pattern", "data", "id"}``; event: the same without ``id``; response ``{"id",
"response", "isDisposed", "err"}``. vidmesh adds an optional ``headers`` object to requests and
events for context such as ``traceparent``; a Nest server ignores fields it does not know.
"""

from __future__ import annotations

from typing import Any

from vidmesh.transport.errors import INTERNAL_ERROR_MESSAGE, NO_MESSAGE_HANDLER
from vidmesh.transport.tcp.framing import encode_frame

INTERNAL_ERROR: dict[str, str] = {"status": "error", "message": INTERNAL_ERROR_MESSAGE}


def request_frame(
    pattern: Any, data: Any, request_id: str, headers: dict[str, str] | None
) -> bytes:
    if headers:
        return encode_frame(
            {"pattern": pattern, "data": data, "id": request_id, "headers": headers}
        )
    return encode_frame({"pattern": pattern, "data": data, "id": request_id})


def event_frame(route: str, data: Any, headers: dict[str, str] | None) -> bytes:
    # Nest's ClientTCP sends the canonical route string, not the pattern object, for events.
    if headers:
        return encode_frame({"pattern": route, "data": data, "headers": headers})
    return encode_frame({"pattern": route, "data": data})


def response_frame(request_id: Any, response: Any) -> bytes:
    return encode_frame({"id": request_id, "response": response, "isDisposed": True})


def stream_item_frame(request_id: Any, item: Any) -> bytes:
    return encode_frame({"id": request_id, "response": item, "isDisposed": False})


def end_of_stream_frame(request_id: Any) -> bytes:
    return encode_frame({"id": request_id, "isDisposed": True})


def error_frame(request_id: Any, error: Any) -> bytes:
    return encode_frame({"id": request_id, "err": error, "isDisposed": True})


def no_handler_frame(request_id: Any) -> bytes:
    return encode_frame(
        {"id": request_id, "status": "error", "err": NO_MESSAGE_HANDLER, "isDisposed": True}
    )


def headers_of(packet: dict[str, Any]) -> dict[str, str]:
    """The ``headers`` field if it is an object of strings; anything else is ignored."""
    headers = packet.get("headers")
    if not headers or type(headers) is not dict:
        return {}
    return {str(key): str(value) for key, value in headers.items()}
