"""Serving a video's bytes: Range (RFC 9110 14), ETag validators, Content-Disposition
(RFC 6266), and the body read from the video service one bounded window at a time."""

from __future__ import annotations

import binascii
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import pybase64
from vidmesh.contracts import video as contract

from vidmesh_api_gateway.clients import VideoClient
from vidmesh_api_gateway.errors import BadGateway, RangeNotSatisfiable

READ_WINDOW: Final = 1024 * 1024
"""Bytes asked of the video service per ``read``: what the gateway holds for one slow client."""

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int
    """One past the last byte."""

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range a ``Range`` header asks of ``size`` bytes; None to send them all.

    A header we do not serve as a range (another unit, several ranges, bad syntax) is ignored,
    as RFC 9110 allows; a valid range that starts past the end raises :class:`RangeNotSatisfiable`.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid syntax: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(int(last) + 1, size) if last else size
    return ByteRange(start, end)


def quoted_etag(etag: str) -> str:
    return f'"{etag}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names our ETag (weak comparison, as RFC 9110 13.1.2 says)."""
    if if_none_match is None:
        return False
    quoted = quoted_etag(etag)
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == quoted:
            return True
    return False


def range_applies(if_range: str | None, etag: str) -> bool:
    """``If-Range``: serve the range only while the representation is the one the client has."""
    return if_range is None or if_range.strip() == quoted_etag(etag)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, when needed, a UTF-8 ``filename*``."""
    printable = "".join(char for char in filename if char.isprintable()) or "video"
    fallback = "".join(char if char.isascii() and char not in '"\\' else "_" for char in printable)
    header = f'attachment; filename="{fallback}"'
    if fallback != printable:
        header += f"; filename*=UTF-8''{quote(printable, safe='')}"
    return header


async def read_body(
    videos: VideoClient, video_id: str, span: ByteRange, *, user_id: str
) -> AsyncIterator[bytes]:
    """The bytes of ``span``, one ``read`` call per :data:`READ_WINDOW`. The first window of
    a read from byte 0 is what the video service counts as a download."""
    for start in range(span.start, span.end, READ_WINDOW):
        window = contract.ReadRange(
            id=video_id, start=start, end=min(start + READ_WINDOW, span.end), user_id=user_id
        )
        async for chunk in videos.read(window):
            yield _decoded(chunk)


def _decoded(chunk: contract.Chunk) -> bytes:
    # validate=True is pybase64's fast path (a SIMD decoder), and a chunk that is not base64
    # is the video service answering off-contract, not bytes to drop silently.
    try:
        return pybase64.b64decode(chunk.data, validate=True)
    except (binascii.Error, ValueError):
        raise BadGateway("Unexpected answer to read: data is not base64") from None
