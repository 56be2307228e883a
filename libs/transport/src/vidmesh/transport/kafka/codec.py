"""Kafka record values and headers as Nest's KafkaRequestSerializer and KafkaParser make them.

Out: a string as it is, bytes as they are, ``None`` as a null value, anything else as JSON (Nest
turns numbers and booleans into their text, which is their JSON too). In: a value that starts
with ``{`` or ``[`` is parsed as JSON, any other is a string, and one starting with a zero byte
(a schema-registry payload) stays bytes. So, as with Nest, a number sent alone arrives as text;
pydantic's lax mode turns ``"5"`` back into ``5`` for a handler that declares ``int``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from vidmesh.transport.tcp.framing import json_default

Headers = list[tuple[str, bytes]]


def encode_value(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value, default=json_default)


def decode_value(raw: bytes | None) -> Any:
    if raw is None:
        return None
    if raw[:1] == b"\x00":
        return raw
    text = raw.decode("utf-8", "replace")
    if text[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    return text


def encode_headers(headers: Mapping[str, Any] | None) -> Headers:
    if not headers:
        return []
    return [(name, encode_value(value) or b"") for name, value in headers.items()]


def decode_headers(raw: Sequence[tuple[str, bytes]] | None) -> dict[str, Any]:
    return {name: decode_value(value) for name, value in raw or ()}


def header_text(raw: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """One header as text, without JSON parsing (ids, topics, partitions)."""
    for key, value in raw or ():
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else ""
    return None
