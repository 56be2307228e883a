"""The video service (TCP 3002): video metadata, and grants to an S3 bucket that holds the bytes.

No video byte crosses this service's wire on the main paths: an upload is ``uploadStart`` (a
grant of presigned part URLs), PUTs of each part straight to the store by whoever holds the
bytes, then ``uploadFinish`` (the service checks size and type from the stored object); a read
is ``grantRead`` (the video and a presigned GET URL), then GETs from the store. Only the
tutorial's ``upload`` and ``download`` keep its payload shapes (bytes as a Node Buffer's JSON,
``{"type": "Buffer", "data": [...]}``) for small files. Errors are Nest's
``{"statusCode", "message", "error"}``: 400, 404, 413, 415, 416, 503 (the store is down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import Field, model_validator
from vidmesh.contracts.media import Mimetype
from vidmesh.contracts.strings import (
    MAX_FILENAME_LENGTH,
    MAX_MIMETYPE_LENGTH,
    Etag,
    Extension,
    FileName,
    Id,
    MimetypeText,
    Title,
    Url,
)
from vidmesh.contracts.strings import MAX_TITLE_LENGTH as MAX_TITLE_LENGTH
from vidmesh.contracts.strings import MIN_TITLE_LENGTH as MIN_TITLE_LENGTH
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
GRANT_READ: Final = {"cmd": "grantRead"}
"""data: :class:`ReadRequest` -> :class:`ReadGrant`; a read of the whole video counts one
download (in the same transaction); a range outside the video: 416."""
UPLOAD_START: Final = {"cmd": "uploadStart"}
"""data: :class:`UploadStart` -> :class:`UploadGrant`; a declared size over the limit: 413."""
UPLOAD_PART: Final = {"cmd": "uploadPart"}
"""data: :class:`PartRequest` -> :class:`PartUrl` (a part of an upload of unknown size)."""
UPLOAD_STATUS: Final = {"cmd": "uploadStatus"}
"""data: :class:`UploadLookup` -> :class:`UploadStatus`: the parts that arrived, fresh URLs for
the others (resume)."""
UPLOAD_FINISH: Final = {"cmd": "uploadFinish"}
"""data: :class:`UploadFinish` -> :class:`Video`; too large: 413, not MP4 or WebM: 415 (the
stored bytes are deleted either way)."""
UPLOAD_ABORT: Final = {"cmd": "uploadAbort"}
"""data: :class:`UploadLookup` -> None; drops what was stored."""

MIN_PART_SIZE: Final = 5 * 1024 * 1024
"""S3's smallest part (but the last): an upload no bigger is one PUT, not a multipart upload."""
MAX_PAGE_SIZE: Final = 100
MAX_BATCH: Final = 100
MAX_PARTS: Final = 10_000
"""S3's most parts in one upload."""


class VideoLookup(WireModel):
    id: Id


class VideoBatch(WireModel):
    ids: list[Id] = Field(max_length=MAX_BATCH)


class VideoId(WireModel):
    id: Id


class Video(WireModel):
    """An answer: stored values are capped, not checked for controls again (rows older than
    that check must still be readable)."""

    id: Id
    title: str = Field(max_length=MAX_TITLE_LENGTH)
    mimetype: Mimetype
    size: int
    user_id: Id
    filename: str = Field(max_length=MAX_FILENAME_LENGTH)
    etag: Etag
    """A strong validator of the bytes (the store's ETag; the SHA-256 of videos that were
    moved from PostgreSQL): the bytes of a video never change."""
    created_at: datetime


class PageQuery(WireModel):
    page: int = Field(default=1, ge=1)
    size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)


class VideoPage(WireModel):
    items: list[Video]
    page: int
    size: int
    total: int


class ByteRange(WireModel):
    """One RFC 9110 byte-range-spec, before the size is known: ``first-last``, ``first-``
    (``last`` None) or ``-suffix`` (``first`` None, ``last`` = how many final bytes)."""

    first: int | None = Field(default=None, ge=0)
    last: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _a_range(self) -> ByteRange:
        if self.first is None and self.last is None:
            raise ValueError("a range needs first, last or both")
        if self.first is not None and self.last is not None and self.last < self.first:
            raise ValueError("last must not be before first")
        return self

    def resolve(self, size: int) -> tuple[int, int] | None:
        """``(start, end)``, end exclusive, clipped to ``size``; None when no byte is in it."""
        if self.first is None:
            assert self.last is not None
            if self.last == 0 or size == 0:
                return None
            return max(size - self.last, 0), size
        if self.first >= size:
            return None
        end = size if self.last is None else min(self.last + 1, size)
        return self.first, end


class ReadRequest(WireModel):
    id: Id
    user_id: Id | None = None
    """Who reads (goes into the ``video_downloaded`` event)."""
    range: ByteRange | None = None
    """None: the whole video."""
    playback: bool = False
    """A URL for a browser or CDN (public endpoint, served inline with the video's type)
    rather than one the gateway fetches at once."""


class ReadGrant(WireModel):
    video: Video
    url: Url
    """A presigned GET of the object; send ``Range: bytes=start-(end-1)`` for a part."""
    start: int
    end: int
    """The resolved range, end exclusive (``0, size`` for the whole video)."""
    expires_at: datetime


class UploadStart(WireModel):
    user_id: Id
    filename: FileName = "video"
    size: int | None = Field(default=None, ge=1)
    """Bytes the client will send, when it knows (every URL is granted at once); None: ask
    for each part's URL with ``uploadPart``."""


class PartUrl(WireModel):
    number: int
    url: Url
    """A presigned PUT of this part (whole upload: one PUT of all the bytes)."""


class UploadGrant(WireModel):
    upload_id: Id
    part_size: int
    """Bytes in every part but the last."""
    parts: list[PartUrl]
    expires_at: datetime
    """When the part URLs stop working (``uploadStatus`` grants fresh ones)."""


class UploadLookup(WireModel):
    upload_id: Id
    user_id: Id
    """Only the user who started an upload may see, finish or abort it (others: 404)."""


class PartRequest(WireModel):
    upload_id: Id
    user_id: Id
    number: int = Field(ge=1, le=MAX_PARTS)


class StoredPart(WireModel):
    number: int
    size: int
    etag: Etag


class UploadStatus(WireModel):
    upload_id: Id
    filename: str = Field(max_length=MAX_FILENAME_LENGTH)
    size: int | None
    part_size: int
    parts: list[StoredPart]
    """The parts the store holds, in order."""
    missing: list[PartUrl]
    """Fresh URLs for the declared parts not stored yet (empty when the size is unknown)."""
    expires_at: datetime


class UploadFinish(WireModel):
    upload_id: Id
    user_id: Id
    title: Title


class NodeBuffer(WireModel):
    """A Node Buffer as JSON.stringify writes it."""

    type: Literal["Buffer"] = "Buffer"
    data: list[int]


class BufferUpload(WireModel):
    """The tutorial's upload: the whole file in one frame (small files only)."""

    user_id: Id
    title: Title
    mimetype: MimetypeText | None = None
    """As the client declared it; ignored: the type is read from the bytes."""
    extension: Extension | None = None
    buffer: NodeBuffer


class BufferDownload(WireModel):
    buffer: NodeBuffer
    mimetype: str = Field(max_length=MAX_MIMETYPE_LENGTH)
    size: int
