"""A multipart upload streamed to the video service as it arrives.

python-multipart's parser calls back synchronously for each piece of the body; the callbacks
only collect bytes, and :meth:`UploadStream.feed` then forwards whole chunks, awaiting each
answer, so a slow video service slows the reading of the request (backpressure). At most one
chunk plus one read of the body is held in memory.
"""

from __future__ import annotations

from typing import Final, Protocol

import pybase64
import structlog
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from vidmesh.contracts import video as contract
from vidmesh.transport import TransportError

from vidmesh_api_gateway.errors import (
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from vidmesh_api_gateway.sniffing import SNIFF_BYTES, sniff_video

logger = structlog.get_logger("vidmesh_api_gateway.uploads")

FILE_FIELD: Final = "video"
TITLE_FIELD: Final = "title"
MAX_TITLE_BYTES: Final = 4 * contract.MAX_TITLE_LENGTH
MAX_OTHER_BYTES: Final = 64 * 1024
"""Bytes of fields other than ``video`` and ``title`` read (and dropped) at most."""
MULTIPART_OVERHEAD: Final = 64 * 1024
"""Room for boundaries, part headers and the title beyond the file's own bytes."""


class UploadSink(Protocol):
    """The video service's upload patterns (the VideoClient; a fake in unit tests)."""

    async def upload_start(self, start: contract.UploadStart) -> contract.UploadTicket: ...

    async def upload_chunk(self, chunk: contract.UploadChunk) -> contract.UploadProgress: ...

    async def upload_finish(self, finish: contract.UploadFinish) -> contract.Video: ...

    async def upload_abort(self, ticket: contract.UploadTicket) -> None: ...


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; else 400."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("Expected a multipart/form-data body")
    return boundary


class UploadStream:
    """One upload: :meth:`feed` each piece of the body, then :meth:`finish`; on any failure
    :meth:`abort` (the route does) so the video service drops what it received."""

    def __init__(self, sink: UploadSink, *, user_id: str, boundary: bytes, max_bytes: int) -> None:
        self.sink = sink
        self.user_id = user_id
        self.max_bytes = max_bytes
        self.ticket: contract.UploadTicket | None = None
        self.sent = 0
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
        assert self.ticket is not None  # the file part ended, so _forward started the upload
        return await self.sink.upload_finish(
            contract.UploadFinish(upload_id=self.ticket.upload_id, title=title)
        )

    async def abort(self) -> None:
        """Tell the video service to drop the upload, if one was started (never raises)."""
        if self.ticket is None:
            return
        ticket, self.ticket = self.ticket, None
        try:
            await self.sink.upload_abort(ticket)
        except (TransportError, GatewayError) as error:
            logger.warning("upload_abort_failed", upload_id=ticket.upload_id, error=str(error))

    def title(self) -> str | None:
        """The validated title, once its part has ended; None if it has not come (yet)."""
        if self._title is None or self._part == TITLE_FIELD:
            return None
        try:
            title = self._title.decode()
            contract.UploadFinish(upload_id="-", title=title)
        except (UnicodeDecodeError, ValidationError):
            raise BadRequest(
                f"title must be {contract.MIN_TITLE_LENGTH} to {contract.MAX_TITLE_LENGTH} "
                "characters of UTF-8"
            ) from None
        return title

    async def _forward(self) -> None:
        if self._filename is None:
            return
        if self.ticket is None:
            if len(self._file) < SNIFF_BYTES and not self._file_done:
                return
            await self._start()
        assert self.ticket is not None
        while len(self._file) >= contract.CHUNK_SIZE or (self._file_done and self._file):
            with memoryview(self._file) as view:  # one copy of the piece, not two
                piece = bytes(view[: contract.CHUNK_SIZE])
            del self._file[: contract.CHUNK_SIZE]
            chunk = contract.UploadChunk(
                upload_id=self.ticket.upload_id,
                offset=self.sent,
                data=pybase64.b64encode_as_string(piece),
            )
            await self.sink.upload_chunk(chunk)
            self.sent += len(piece)

    async def _start(self) -> None:
        if not self._file:
            raise BadRequest(f"The {FILE_FIELD!r} file is empty")
        if sniff_video(bytes(self._file[:SNIFF_BYTES])) is None:
            raise UnsupportedMediaType()
        start = contract.UploadStart(user_id=self.user_id, filename=self._filename or "video")
        self.ticket = await self.sink.upload_start(start)

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
