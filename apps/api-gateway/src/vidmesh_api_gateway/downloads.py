"""Serving a video's bytes: Range (RFC 9110 14), ETag validators and Content-Disposition
(RFC 6266). The bytes come from the object store (``store.py``); what range a request wants is
read here, and the video service, which knows the size, resolves it (and counts whole reads)."""

from __future__ import annotations

import re
from urllib.parse import quote

from vidmesh.contracts import video as contract

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None) -> contract.ByteRange | None:
    """The one range a ``Range`` header asks for; None to send the whole video.

    A header we do not serve as a range (another unit, several ranges, bad syntax) is ignored,
    as RFC 9110 allows; whether the range holds any byte is for the video's size to say.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if first and last and int(last) < int(first):
        return None  # invalid syntax: ignored
    return contract.ByteRange(first=int(first) if first else None, last=int(last) if last else None)


def content_range(start: int, end: int, size: int) -> str:
    return f"bytes {start}-{end - 1}/{size}"


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
