"""A multipart form upload streamed into the object store as it arrives.

python-multipart's parser calls back synchronously for each piece of the body; the callbacks
only collect the file's bytes, and :meth:`UploadStream.feed` then PUTs each whole part to a
URL the video service granted, awaiting each, so a slow store slows the reading of the
request (backpressure). A file that ends within :data:`~vidmesh.contracts.video.MIN_PART_SIZE`
is one PUT; a bigger one a multipart upload of the service's part size. At most one part plus
one read of the body is held in memory per upload; the bytes never cross the video service.
"""

from __future__ import annotations

from typing import Final, Protocol

import structlog
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from vidmesh.contracts import video as contract
from vidmesh.contracts.media import SNIFF_BYTES, sniff_video
from vidmesh.transport import TransportError

from vidmesh_api_gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    UnsupportedMediaType,
)

logger = structlog.get_logger("vidmesh_api_gateway.uploads")

FILE_FIELD: Final = "video"
TITLE_FIELD: Final = "title"
MAX_TITLE_BYTES: Final = 4 * contract.MAX_TITLE_LENGTH
MAX_OTHER_BYTES: Final = 64 * 1024
"""Bytes of fields other than ``video`` and ``title`` read (and dropped) at most."""
MULTIPART_OVERHEAD: Final = 64 * 1024
"""Room for boundaries, part headers and the title beyond the file's own bytes."""


class UploadGrants(Protocol):
    """The video service's upload patterns (the VideoClient)."""

    async def upload_start(self, start: contract.UploadStart) -> contract.UploadGrant: ...

    async def upload_part(self, request: contract.PartRequest) -> contract.PartUrl: ...

    async def upload_finish(self, finish: contract.UploadFinish) -> contract.Video: ...

    async def upload_abort(self, lookup: contract.UploadLookup) -> None: ...


class PartWriter(Protocol):
    """Where the parts go: the object store, through the granted URLs (``StoreClient``)."""

    async def put(self, url: str, data: bytes | bytearray | memoryview) -> None: ...


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; else 400."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("Expected a multipart/form-data body")
    return boundary


class UploadStream:
    """One upload: :meth:`feed` each piece of the body, then :meth:`finish`; on any failure
    :meth:`abort` (the route does) so the video service drops what was stored."""

    def __init__(
        self,
        grants: UploadGrants,
        store: PartWriter,
        *,
        user_id: str,
        boundary: bytes,
        max_bytes: int,
    ) -> None:
        self.grants = grants
        self.store = store
        self.user_id = user_id
        self.max_bytes = max_bytes
        self.grant: contract.UploadGrant | None = None
        self.sent = 0
        self._parts_sent = 0
        self._sniffed = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._part: str | None = None
        self._title: bytearray | None = None
        self._filename: str | None = None
        self._file = bytearray()  # received, not yet forwarded
        self._received = 0
        self._file_done = False
        self._other_bytes = 0
        self._ended = False

    # -- the body, as it arrives --------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Parse ``data`` and forward every whole chunk it completes."""
        try:
            self._parser.write(data)
        except MultipartParseError:
            raise BadRequest("Malformed multipart body") from None
        await self._forward()

    async def finish(self) -> contract.Video:
        """After the last piece: forward the rest and create the video with its title."""
        if not self._ended:
            raise BadRequest("Incomplete multipart body")
        if self._filename is None:
            raise BadRequest(f"The {FILE_FIELD!r} file is required")
        title = self.title()
        if title is None:
            raise BadRequest(f"The {TITLE_FIELD!r} field is required")
        await self._forward()
        assert self.grant is not None  # the file part ended, so _forward started the upload
        finish = contract.UploadFinish(
            upload_id=self.grant.upload_id, user_id=self.user_id, title=title
        )
        video = await self.grants.upload_finish(finish)
        self.grant = None  # a video now: nothing left to abort
        return video

    async def abort(self) -> None:
        """Tell the video service to drop the upload, if one was started (never raises)."""
        if self.grant is None:
            return
        grant, self.grant = self.grant, None
        lookup = contract.UploadLookup(upload_id=grant.upload_id, user_id=self.user_id)
        try:
            await self.grants.upload_abort(lookup)
        except (TransportError, GatewayError) as error:
            logger.warning("upload_abort_failed", upload_id=grant.upload_id, error=str(error))

    def title(self) -> str | None:
        """The validated title, once its part has ended; None if it has not come (yet)."""
        if self._title is None or self._part == TITLE_FIELD:
            return None
        try:
            title = self._title.decode()
            contract.UploadFinish(upload_id="-", user_id="-", title=title)
        except (UnicodeDecodeError, ValidationError):
            raise BadRequest(
                f"title must be {contract.MIN_TITLE_LENGTH} to {contract.MAX_TITLE_LENGTH} "
                "characters of UTF-8"
            ) from None
        return title

    async def _forward(self) -> None:
        if self._filename is None:
            return
        if not self._sniffed and (len(self._file) >= SNIFF_BYTES or self._file_done):
            self._sniff()  # a wrong type is refused while the body still streams in
        if self.grant is None:
            if not self._file_done and len(self._file) <= contract.MIN_PART_SIZE:
                return
            await self._start()
        assert self.grant is not None
        part_size = self.grant.part_size
        while len(self._file) >= part_size or (self._file_done and self._file):
            with memoryview(self._file) as view:  # one copy of the part, not two
                part = bytes(view[:part_size])
            del self._file[:part_size]
            await self.store.put(await self._part_url(self._parts_sent + 1), part)
            self._parts_sent += 1
            self.sent += len(part)

    def _sniff(self) -> None:
        if not self._file:
            raise BadRequest(f"The {FILE_FIELD!r} file is empty")
        if sniff_video(bytes(self._file[:SNIFF_BYTES])) is None:
            raise UnsupportedMediaType()
        self._sniffed = True

    async def _start(self) -> None:
        """One PUT when the whole file is here and fits a part; else a multipart upload."""
        size = len(self._file) if self._file_done else None
        start = contract.UploadStart(
            user_id=self.user_id, filename=self._filename or "video", size=size
        )
        self.grant = await self.grants.upload_start(start)

    async def _part_url(self, number: int) -> str:
        assert self.grant is not None
        granted = {part.number: part.url for part in self.grant.parts}
        if number in granted:
            return granted[number]
        request = contract.PartRequest(
            upload_id=self.grant.upload_id, user_id=self.user_id, number=number
        )
        return (await self.grants.upload_part(request)).url

    # -- python-multipart callbacks (synchronous: collect only) --------------------------------

    def _on_part_begin(self) -> None:
        self._disposition = b""
        self._part = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_field.strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD:
            if self._filename is not None:
                raise BadRequest(f"Only one {FILE_FIELD!r} file is accepted")
            self._filename = _safe_filename(params.get(b"filename", b""))
        elif name == TITLE_FIELD:
            if self._title is not None:
                raise BadRequest(f"Only one {TITLE_FIELD!r} field is accepted")
            self._title = bytearray()
        self._part = name

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._part == FILE_FIELD:
            self._received += size
            if self._received > self.max_bytes:
                raise PayloadTooLarge(f"The video is larger than {self.max_bytes} bytes")
            self._file += memoryview(data)[start:end]
        elif self._part == TITLE_FIELD and self._title is not None:
            self._title += data[start:end]
            if len(self._title) > MAX_TITLE_BYTES:
                raise BadRequest(f"title must be at most {contract.MAX_TITLE_LENGTH} characters")
        else:
            self._other_bytes += size
            if self._other_bytes > MAX_OTHER_BYTES:
                raise BadRequest("Too many bytes in fields other than video and title")

    def _on_part_end(self) -> None:
        if self._part == FILE_FIELD:
            self._file_done = True
        self._part = None

    def _on_end(self) -> None:
        self._ended = True


def _safe_filename(raw: bytes) -> str:
    """The client's file name without any path (old browsers send one), at most 255 chars."""
    name = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return name[:255] or "video"
