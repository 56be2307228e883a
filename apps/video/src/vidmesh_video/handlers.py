"""The video service's patterns (``vidmesh.contracts.video``): one method each, no SQL; the
upload patterns are :class:`~vidmesh_video.uploads.Uploads`'."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.contracts import video as contract
from vidmesh.contracts.media import SNIFF_BYTES, extension_of, sniff_video
from vidmesh.kit.db import Database
from vidmesh.transport import Router

from vidmesh_video.errors import (
    BufferPatternsOff,
    InvalidVideoData,
    InvalidVideoId,
    RangeNotSatisfiable,
    UnsupportedVideoType,
    UploadTooLarge,
    VideoNotFound,
)
from vidmesh_video.ids import maybe_uuid, parse_id
from vidmesh_video.objectstore import ObjectStore, key_of
from vidmesh_video.repository import VideoRepository
from vidmesh_video.uploads import Uploads


class VideoHandlers:
    """Metadata, read grants and the tutorial's patterns; each call in its own transaction.
    ``on_event`` runs after a transaction that wrote an outbox event committed (the relay's
    wake-up)."""

    def __init__(
        self,
        database: Database,
        videos: VideoRepository,
        store: ObjectStore,
        *,
        max_buffer_bytes: int,
        read_url_ttl: timedelta,
        playback_url_ttl: timedelta,
        on_event: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.videos = videos
        self.store = store
        self.max_buffer_bytes = max_buffer_bytes
        self.read_url_ttl = read_url_ttl
        self.playback_url_ttl = playback_url_ttl
        self.on_event = on_event

    async def grant_read(self, request: contract.ReadRequest) -> contract.ReadGrant:
        """The video and a URL to read it; a read of the whole video counts one download, in
        the same transaction as the grant."""
        video_id = parse_id(request.id, InvalidVideoId)
        async with self.database.transaction() as session:
            video = await self._video(session, video_id)
            span = (0, video.size) if request.range is None else request.range.resolve(video.size)
            if span is None:
                raise RangeNotSatisfiable(f"No byte of the range in a video of {video.size} bytes")
            if request.playback:
                ttl = self.playback_url_ttl
                overrides = {
                    "ResponseContentType": video.mimetype,
                    "ResponseContentDisposition": _inline(video.filename),
                }
            else:
                ttl, overrides = self.read_url_ttl, {}
            url, expires_at = await self.store.get_url(
                key_of(video_id), ttl, public=request.playback, overrides=overrides
            )
            whole = span == (0, video.size)
            if whole:
                await self.videos.record_download(session, video.id, user_id=request.user_id)
        if whole:
            self.on_event()
        start, end = span
        return contract.ReadGrant(video=video, url=url, start=start, end=end, expires_at=expires_at)

    async def find_one(self, lookup: contract.VideoLookup) -> contract.Video:
        video_id = parse_id(lookup.id, InvalidVideoId)
        async with self.database.autocommit() as session:
            return await self._video(session, video_id)

    async def find_many(self, batch: contract.VideoBatch) -> list[contract.Video]:
        """The videos of the ids that exist, in the order asked (malformed ids never do)."""
        wanted = [video_id for video_id in map(maybe_uuid, batch.ids) if video_id is not None]
        async with self.database.autocommit() as session:
            found = {video.id: video for video in await self.videos.videos(session, wanted)}
        return [found[str(video_id)] for video_id in wanted if str(video_id) in found]

    async def list(self, query: contract.PageQuery) -> contract.VideoPage:
        """A page and the total, each read on its own (an upload between the two may show)."""
        async with self.database.autocommit() as session:
            items, total = await self.videos.page(session, page=query.page, size=query.size)
        return contract.VideoPage(items=items, page=query.page, size=query.size, total=total)

    async def upload(self, request: contract.BufferUpload) -> contract.VideoId:
        """The tutorial's upload: a whole (small) file as Node Buffer JSON, stored by us."""
        if len(request.buffer.data) > self.max_buffer_bytes:
            raise UploadTooLarge(f"Video larger than {self.max_buffer_bytes} bytes")
        data = _buffer_bytes(request.buffer)
        mimetype = sniff_video(data[:SNIFF_BYTES])
        if mimetype is None:
            raise UnsupportedVideoType()
        video_id = uuid.uuid4()
        async with self.database.transaction() as session:
            # The object first, the row committed after it: a failed PUT leaves no video.
            etag = await self.store.put(key_of(video_id), data, mimetype)
            await self.videos.add_video(
                session,
                video_id=video_id,
                title=request.title,
                mimetype=mimetype,
                size=len(data),
                user_id=request.user_id,
                filename=f"video.{request.extension or extension_of(mimetype)}",
                etag=etag,
            )
        return contract.VideoId(id=str(video_id))

    async def download(self, lookup: contract.VideoLookup) -> contract.BufferDownload:
        """The tutorial's download: the whole (small) file as Node Buffer JSON; counts one."""
        video_id = parse_id(lookup.id, InvalidVideoId)
        async with self.database.autocommit() as session:
            video = await self._video(session, video_id)
        if video.size > self.max_buffer_bytes:
            raise UploadTooLarge(f"Videos over {self.max_buffer_bytes} bytes: use grantRead")
        data = await self.store.get(key_of(video_id))
        async with self.database.autocommit() as session:
            await self.videos.record_download(session, video.id, user_id=None)
        self.on_event()
        buffer = contract.NodeBuffer(data=list(data))
        return contract.BufferDownload(buffer=buffer, mimetype=video.mimetype, size=video.size)

    async def _video(self, session: AsyncSession, video_id: uuid.UUID) -> contract.Video:
        video = await self.videos.video(session, video_id)
        if video is None:
            raise VideoNotFound()
        return video


def build_router(
    handlers: VideoHandlers, uploads: Uploads, *, buffer_patterns: bool = True
) -> Router:
    """Every pattern of the video service; with ``buffer_patterns`` off the tutorial's
    ``upload``/``download`` are still answered, with an error saying they are off (a caller
    gets that rather than Nest's vaguer "no matching message handler")."""
    router = Router()
    router.message(contract.GRANT_READ)(handlers.grant_read)
    router.message(contract.FIND_ONE)(handlers.find_one)
    router.message(contract.FIND_MANY)(handlers.find_many)
    router.message(contract.LIST)(handlers.list)
    if buffer_patterns:
        router.message(contract.UPLOAD)(handlers.upload)
        router.message(contract.DOWNLOAD)(handlers.download)
    else:
        router.message(contract.UPLOAD)(_buffer_patterns_off)
        router.message(contract.DOWNLOAD)(_buffer_patterns_off)
    router.message(contract.UPLOAD_START)(uploads.start)
    router.message(contract.UPLOAD_PART)(uploads.part)
    router.message(contract.UPLOAD_STATUS)(uploads.status)
    router.message(contract.UPLOAD_FINISH)(uploads.finish)
    router.message(contract.UPLOAD_ABORT)(uploads.abort)
    return router


def _buffer_patterns_off() -> None:
    raise BufferPatternsOff()


def _inline(filename: str) -> str:
    """``Content-Disposition: inline`` with the name in RFC 6266's ``filename*``."""
    return f"inline; filename*=UTF-8''{quote(filename, safe='')}"


def _buffer_bytes(buffer: contract.NodeBuffer) -> bytes:
    try:
        return bytes(buffer.data)
    except ValueError:
        raise InvalidVideoData("Buffer values must be bytes (0-255)") from None
