"""Ids on the wire are strings; in the tables they are UUIDs."""

from __future__ import annotations

import uuid

from vidmesh_video.errors import VideoError


def maybe_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def parse_id(value: str, error: type[VideoError]) -> uuid.UUID:
    """``value`` as a UUID; else ``error`` (an id that is not a UUID was never issued)."""
    parsed = maybe_uuid(value)
    if parsed is None:
        raise error()
    return parsed
