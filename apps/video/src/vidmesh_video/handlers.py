"""The video service's patterns (``vidmesh.contracts.video``): one method each, no SQL."""

from __future__ import annotations

import binascii
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pybase64
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.contracts import video as contract
from vidmesh.contracts.video import CHUNK_SIZE
from vidmesh.kit.db import Database
from vidmesh.transport import Router

from vidmesh_video.errors import (
    InvalidVideoData,
    InvalidVideoId,
    RangeNotSatisfiable,
    UnsupportedVideoType,
    UploadNotFound,
    UploadOutOfOrder,
    UploadTooLarge,
    VideoNotFound,
)
from vidmesh_video.repository import VideoRepository
from vidmesh_video.storage import (
    SNIFF_BYTES,
    UploadDigests,
    VideoStorage,
    extension_of,
    sniff_mimetype,
)

logger = structlog.get_logger("vidmesh_video")


class VideoHandlers:
    """Uploads, reads and metadata; each call in its own transaction. ``on_event`` runs after
    a transaction that wrote an outbox event committed (the relay's wake-up)."""

    def __init__(
        self,
        database: Database,
        videos: VideoRepository,
        storage: VideoStorage,
        *,
        max_upload_bytes: int,
        max_buffer_bytes: int,
        on_event: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.videos = videos
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self.max_buffer_bytes = min(max_buffer_bytes, max_upload_bytes)
        self.on_event = on_event
        self.digests = UploadDigests()

    async def upload_start(self, request: contract.UploadStart) -> contract.UploadTicket:
        upload_id = uuid.uuid4()
        async with self.database.autocommit() as session:  # one INSERT
            await self.videos.create_upload(
                session, upload_id=upload_id, user_id=request.user_id, filename=request.filename
            )
        self.digests.start(upload_id)
        return contract.UploadTicket(upload_id=str(upload_id))

    async def upload_chunk(self, chunk: contract.UploadChunk) -> contract.UploadProgress:
        upload_id = _upload_id(chunk.upload_id)
        data = _decode_chunk(chunk.data)
        received = chunk.offset + len(data)
        async with self.database.transaction() as session:
            advanced = await self.videos.advance_upload(
                session, upload_id, offset=chunk.offset, size=len(data), limit=self.max_upload_bytes
            )
            if advanced:
                await self.storage.append(session, upload_id, offset=chunk.offset, data=data)
            else:
                await self._refuse_chunk(session, upload_id, chunk.offset)
                await self._drop(session, upload_id)  # committed before the 413 goes out
        if not advanced:
            raise UploadTooLarge(f"Video larger than {self.max_upload_bytes} bytes")
        self.digests.advance(upload_id, chunk.offset, data)
        return contract.UploadProgress(received=received)

    async def _refuse_chunk(self, session: AsyncSession, upload_id: uuid.UUID, offset: int) -> None:
        """Why a chunk did not advance its upload: raises unless it was one too many."""
        upload = await self.videos.lock_upload(session, upload_id)
        if upload is None:
            raise UploadNotFound()
        if offset != upload.received:
            raise UploadOutOfOrder(f"Expected the chunk at offset {upload.received}")

    async def upload_finish(self, request: contract.UploadFinish) -> contract.Video:
        """Check the type, then turn the upload into a video in one transaction."""
        upload_id = _upload_id(request.upload_id)
        async with self.database.transaction() as session:
            upload = await self.videos.lock_upload(session, upload_id)
            if upload is None:
                raise UploadNotFound()
            mimetype = sniff_mimetype(await self.storage.head(session, upload_id))
            if mimetype is None:
                await self._drop(session, upload_id)
            else:
                etag = self.digests.pop(upload_id, upload.received)
                if etag is None:
                    etag = await self.storage.digest(session, upload_id, upload.received)
                video = await self.videos.add_video(
                    session,
                    video_id=upload_id,
                    title=request.title,
                    mimetype=mimetype,
                    size=upload.received,
                    user_id=upload.user_id,
                    filename=upload.filename,
                    etag=etag,
                )
                await self.videos.delete_upload(session, upload_id)
        if mimetype is None:
            raise UnsupportedVideoType()
        logger.info("video_uploaded", video_id=video.id, size=video.size, mimetype=mimetype)
        return video

    async def upload_abort(self, ticket: contract.UploadTicket) -> None:
        upload_id = _upload_id(ticket.upload_id)
        async with self.database.transaction() as session:
            if await self.videos.lock_upload(session, upload_id) is None:
                raise UploadNotFound()
            await self._drop(session, upload_id)

    async def _drop(self, session: AsyncSession, upload_id: uuid.UUID) -> None:
        await self.storage.delete(session, upload_id)
        await self.videos.delete_upload(session, upload_id)
        self.digests.discard(upload_id)

    async def sweep_uploads(self, idle_for: timedelta) -> int:
        """Drop uploads (and their chunks) without a chunk for ``idle_for``; returns how many."""
        async with self.database.transaction() as session:
            stale = await self.videos.idle_uploads(session, before=datetime.now(UTC) - idle_for)
            for upload_id in stale:
                await self._drop(session, upload_id)
        if stale:
            logger.info("uploads_swept", count=len(stale))
        return len(stale)

    async def read(self, request: contract.ReadRange) -> AsyncIterator[contract.Chunk]:
        """The bytes in ``[start, end)`` as chunks; a read from byte 0 counts a download."""
        video_id = _video_id(request.id)
        async with self.database.autocommit() as session:
            video = await self._video(session, video_id)
            start, end = _satisfiable(request.start, request.end, video.size)
            if start == 0:
                # One INSERT, committed (durably) on its own before the first byte goes out.
                await self.videos.record_download(session, video.id, user_id=request.user_id)
        if start == 0:
            self.on_event()
        offset = start
        async for piece in self.storage.read(video_id, start=start, end=end):
            yield contract.Chunk(offset=offset, data=pybase64.b64encode_as_string(piece))
            offset += len(piece)

    async def find_one(self, lookup: contract.VideoLookup) -> contract.Video:
        video_id = _video_id(lookup.id)
        async with self.database.autocommit() as session:
            return await self._video(session, video_id)

    async def find_many(self, batch: contract.VideoBatch) -> list[contract.Video]:
        """The videos of the ids that exist, in the order asked (malformed ids never do)."""
        wanted = [video_id for video_id in map(_maybe_uuid, batch.ids) if video_id is not None]
        async with self.database.autocommit() as session:
            found = {video.id: video for video in await self.videos.videos(session, wanted)}
        return [found[str(video_id)] for video_id in wanted if str(video_id) in found]

    async def list(self, query: contract.PageQuery) -> contract.VideoPage:
        """A page and the total, each read on its own (an upload between the two may show)."""
        async with self.database.autocommit() as session:
            items, total = await self.videos.page(session, page=query.page, size=query.size)
        return contract.VideoPage(items=items, page=query.page, size=query.size, total=total)

    async def upload(self, request: contract.BufferUpload) -> contract.VideoId:
        """The tutorial's upload: a whole (small) file as Node Buffer JSON."""
        if len(request.buffer.data) > self.max_buffer_bytes:
            raise UploadTooLarge(f"Video larger than {self.max_buffer_bytes} bytes")
        data = _buffer_bytes(request.buffer)
        mimetype = sniff_mimetype(data[:SNIFF_BYTES])
        if mimetype is None:
            raise UnsupportedVideoType()
        video_id = uuid.uuid4()
        async with self.database.transaction() as session:
            await self.storage.append(session, video_id, offset=0, data=data)
            await self.videos.add_video(
                session,
                video_id=video_id,
                title=request.title,
                mimetype=mimetype,
                size=len(data),
                user_id=request.user_id,
                filename=f"video.{request.extension or extension_of(mimetype)}",
                etag=hashlib.sha256(data).hexdigest(),
            )
        return contract.VideoId(id=str(video_id))

    async def download(self, lookup: contract.VideoLookup) -> contract.BufferDownload:
        """The tutorial's download: the whole (small) file as Node Buffer JSON; counts one."""
        video_id = _video_id(lookup.id)
        async with self.database.transaction() as session:
            video = await self._video(session, video_id)
            if video.size > self.max_buffer_bytes:
                raise UploadTooLarge(f"Videos over {self.max_buffer_bytes} bytes: use read")
            await self.videos.record_download(session, video.id, user_id=None)
        self.on_event()
        data = bytearray()
        async for piece in self.storage.read(video_id, start=0, end=video.size):
            data += piece
        buffer = contract.NodeBuffer(data=list(data))
        return contract.BufferDownload(buffer=buffer, mimetype=video.mimetype, size=video.size)

    async def _video(self, session: AsyncSession, video_id: uuid.UUID) -> contract.Video:
        video = await self.videos.video(session, video_id)
        if video is None:
            raise VideoNotFound()
        return video


def build_router(handlers: VideoHandlers) -> Router:
    router = Router()
    router.message(contract.UPLOAD_START)(handlers.upload_start)
    router.message(contract.UPLOAD_CHUNK)(handlers.upload_chunk)
    router.message(contract.UPLOAD_FINISH)(handlers.upload_finish)
    router.message(contract.UPLOAD_ABORT)(handlers.upload_abort)
    router.message(contract.READ)(handlers.read)
    router.message(contract.FIND_ONE)(handlers.find_one)
    router.message(contract.FIND_MANY)(handlers.find_many)
    router.message(contract.LIST)(handlers.list)
    router.message(contract.UPLOAD)(handlers.upload)
    router.message(contract.DOWNLOAD)(handlers.download)
    return router


def _maybe_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _video_id(value: str) -> uuid.UUID:
    video_id = _maybe_uuid(value)
    if video_id is None:
        raise InvalidVideoId()
    return video_id


def _upload_id(value: str) -> uuid.UUID:
    upload_id = _maybe_uuid(value)
    if upload_id is None:
        raise UploadNotFound()  # tickets are ours: one that is not a UUID was never issued
    return upload_id


def _satisfiable(start: int, end: int | None, size: int) -> tuple[int, int]:
    """``[start, end)`` clipped to the video; 416 when it holds no byte of it."""
    end = size if end is None else min(end, size)
    if start >= size or end <= start:
        raise RangeNotSatisfiable(f"Range {start}-{end} outside a video of {size} bytes")
    return start, end


def _decode_chunk(data: str) -> bytes:
    try:
        decoded = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidVideoData("Chunk data is not base64") from None
    if len(decoded) > CHUNK_SIZE:
        raise InvalidVideoData(f"A chunk holds at most {CHUNK_SIZE} bytes")
    return decoded


def _buffer_bytes(buffer: contract.NodeBuffer) -> bytes:
    try:
        return bytes(buffer.data)
    except ValueError:
        raise InvalidVideoData("Buffer values must be bytes (0-255)") from None
