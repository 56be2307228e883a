"""The video service (TCP 3002): video metadata and bytes.

Bytes cross the wire in chunks of at most :data:`CHUNK_SIZE`, base64 in JSON, so no frame ever
holds a whole file: an upload is ``uploadStart``, ``uploadChunk``..., ``uploadFinish``; a download
is ``read``, a stream of :class:`Chunk`. The tutorial's ``upload`` and ``download`` keep its
payload shapes (bytes as a Node Buffer's JSON, ``{"type": "Buffer", "data": [...]}``) for small
files. Errors are Nest's ``{"statusCode", "message", "error"}``: 400, 404, 409, 413, 415.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import Field
from vidmesh.contracts.wire import WireModel

UPLOAD: Final = {"cmd": "upload"}
"""data: :class:`BufferUpload` (tutorial shape) -> :class:`VideoId`."""
DOWNLOAD: Final = {"cmd": "download"}
"""data: :class:`VideoLookup` -> :class:`BufferDownload` (tutorial shape); counts a download."""
FIND_ONE: Final = {"cmd": "findOne"}
"""data: :class:`VideoLookup` -> :class:`Video`."""
FIND_MANY: Final = {"cmd": "findMany"}
"""data: :class:`VideoBatch` -> list of :class:`Video` (unknown ids left out)."""
LIST: Final = {"cmd": "list"}
"""data: :class:`PageQuery` -> :class:`VideoPage`, newest first."""
UPLOAD_START: Final = {"cmd": "uploadStart"}
"""data: :class:`UploadStart` -> :class:`UploadTicket`."""
UPLOAD_CHUNK: Final = {"cmd": "uploadChunk"}
"""data: :class:`UploadChunk` -> :class:`UploadProgress`; past the size limit: 413."""
UPLOAD_FINISH: Final = {"cmd": "uploadFinish"}
"""data: :class:`UploadFinish` -> :class:`Video`; bytes not MP4 or WebM: 415."""
UPLOAD_ABORT: Final = {"cmd": "uploadAbort"}
"""data: :class:`UploadTicket` -> None; drops what was received."""
READ: Final = {"cmd": "read"}
"""data: :class:`ReadRange` -> a stream of :class:`Chunk`; a read from byte 0 counts a download."""

CHUNK_SIZE: Final = 256 * 1024
"""Most bytes in one chunk (upload or download)."""
MAX_TITLE_LENGTH: Final = 100
MIN_TITLE_LENGTH: Final = 2
MAX_PAGE_SIZE: Final = 100
MAX_BATCH: Final = 100

Mimetype = Literal["video/mp4", "video/webm"]


class VideoLookup(WireModel):
    id: str


class VideoBatch(WireModel):
    ids: list[str] = Field(max_length=MAX_BATCH)


class VideoId(WireModel):
    id: str


class Video(WireModel):
    id: str
    title: str
    mimetype: Mimetype
    size: int
    user_id: str
    filename: str
    etag: str
    """A strong validator of the bytes (their SHA-256, hex)."""
    created_at: datetime


class PageQuery(WireModel):
    page: int = Field(default=1, ge=1)
    size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)


class VideoPage(WireModel):
    items: list[Video]
    page: int
    size: int
    total: int


class UploadStart(WireModel):
    user_id: str
    filename: str = Field(default="video", max_length=255)


class UploadTicket(WireModel):
    upload_id: str


class UploadChunk(WireModel):
    upload_id: str
    offset: int = Field(ge=0)
    """Where this chunk starts: it must equal the bytes received so far (a retry is refused)."""
    data: str = Field(max_length=(CHUNK_SIZE * 4) // 3 + 4)
    """Base64 of at most CHUNK_SIZE bytes."""


class UploadProgress(WireModel):
    received: int


class UploadFinish(WireModel):
    upload_id: str
    title: str = Field(min_length=MIN_TITLE_LENGTH, max_length=MAX_TITLE_LENGTH)


class ReadRange(WireModel):
    id: str
    start: int = Field(default=0, ge=0)
    end: int | None = Field(default=None, ge=0)
    """One past the last byte wanted; None reads to the end."""
    user_id: str | None = None
    """Who downloads (goes into the ``video_downloaded`` event)."""


class Chunk(WireModel):
    offset: int
    data: str
    """Base64 of the bytes at ``offset``."""


class NodeBuffer(WireModel):
    """A Node Buffer as JSON.stringify writes it."""

    type: Literal["Buffer"] = "Buffer"
    data: list[int]


class BufferUpload(WireModel):
    """The tutorial's upload: the whole file in one frame (small files only)."""

    user_id: str
    title: str = Field(min_length=MIN_TITLE_LENGTH, max_length=MAX_TITLE_LENGTH)
    mimetype: str | None = None
    """As the client declared it; ignored: the type is read from the bytes."""
    extension: str | None = None
    buffer: NodeBuffer


class BufferDownload(WireModel):
    buffer: NodeBuffer
    mimetype: str
    size: int
