"""Uploads: grants to PUT bytes straight into the store, then the checks that turn them into
a video.

An upload whose size is known and fits one part is a single presigned PUT of the object;
any other is an S3 multipart upload whose parts are PUT with presigned URLs. Whoever holds the
bytes (the gateway streaming a form, a browser) talks to the store; this service only grants,
lists, completes and aborts. At the finish the stored object is the authority: its size
against the limit, its first bytes against the sniffer; a refused upload is deleted.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.contracts import video as contract
from vidmesh.contracts.media import SNIFF_BYTES, Mimetype, sniff_video
from vidmesh.kit.db import Database

from vidmesh_video.errors import (
    InvalidVideoData,
    UnsupportedVideoType,
    UploadIncomplete,
    UploadNotFound,
    UploadTooLarge,
    VideoError,
)
from vidmesh_video.ids import parse_id
from vidmesh_video.models import Upload
from vidmesh_video.objectstore import ObjectMissing, ObjectStore, Part, key_of
from vidmesh_video.repository import VideoRepository

logger = structlog.get_logger("vidmesh_video.uploads")

SWEEP_BATCH: Final = 100


class Uploads:
    """The upload patterns; each call in its own transaction."""

    def __init__(
        self,
        database: Database,
        videos: VideoRepository,
        store: ObjectStore,
        *,
        max_upload_bytes: int,
        part_size: int,
        url_ttl: timedelta,
    ) -> None:
        self.database = database
        self.videos = videos
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.part_size = part_size
        self.url_ttl = url_ttl

    async def start(self, request: contract.UploadStart) -> contract.UploadGrant:
        if request.size is not None and request.size > self.max_upload_bytes:
            raise UploadTooLarge(f"Video larger than {self.max_upload_bytes} bytes")
        upload_id = uuid.uuid4()
        key = key_of(upload_id)
        single = request.size is not None and request.size <= self.part_size
        store_upload_id = None if single else await self.store.create_multipart(key)
        try:
            async with self.database.autocommit() as session:  # one INSERT
                await self.videos.create_upload(
                    session,
                    upload_id=upload_id,
                    user_id=request.user_id,
                    filename=request.filename,
                    size=request.size,
                    part_size=self.part_size,
                    store_upload_id=store_upload_id,
                )
        except BaseException:
            if store_upload_id is not None:
                with anyio.CancelScope(shield=True):
                    await self.store.abort(key, store_upload_id)
            raise
        numbers = self._numbers(request.size)
        parts = [await self._part_url(key, store_upload_id, number) for number in numbers]
        return contract.UploadGrant(
            upload_id=str(upload_id),
            part_size=self.part_size,
            parts=parts,
            expires_at=self._expiry(),
        )

    async def part(self, request: contract.PartRequest) -> contract.PartUrl:
        """The URL of one part, for an upload whose size was not declared."""
        async with self.database.autocommit() as session:
            upload = await self._upload(session, request.upload_id, request.user_id)
            await self.videos.touch_upload(session, upload.id)
        last = self._part_count(upload.size if upload.size is not None else self.max_upload_bytes)
        if request.number > last:
            raise UploadTooLarge(f"Video larger than {self.max_upload_bytes} bytes")
        return await self._part_url(key_of(upload.id), upload.store_upload_id, request.number)

    async def status(self, lookup: contract.UploadLookup) -> contract.UploadStatus:
        """The parts the store holds, and fresh URLs for those still missing."""
        async with self.database.autocommit() as session:
            upload = await self._upload(session, lookup.upload_id, lookup.user_id)
            await self.videos.touch_upload(session, upload.id)
        key = key_of(upload.id)
        stored = await self._stored_parts(upload)
        arrived = {part.number for part in stored}
        missing = [
            await self._part_url(key, upload.store_upload_id, number)
            for number in self._numbers(upload.size)
            if number not in arrived
        ]
        return contract.UploadStatus(
            upload_id=str(upload.id),
            filename=upload.filename,
            size=upload.size,
            part_size=upload.part_size,
            parts=[contract.StoredPart(number=p.number, size=p.size, etag=p.etag) for p in stored],
            missing=missing,
            expires_at=self._expiry(),
        )

    async def finish(self, request: contract.UploadFinish) -> contract.Video:
        """Complete the upload, check the stored object, and add the video; a refused upload
        is deleted (committed) before the error goes out."""
        refusal: VideoError | None = None
        async with self.database.transaction() as session:
            upload = await self._upload(session, request.upload_id, request.user_id, lock=True)
            try:
                mimetype, size, etag = await self._check(upload)
            except (UploadTooLarge, UnsupportedVideoType, InvalidVideoData) as error:
                await self._drop(session, upload)
                refusal = error
            else:
                video = await self.videos.add_video(
                    session,
                    video_id=upload.id,
                    title=request.title,
                    mimetype=mimetype,
                    size=size,
                    user_id=upload.user_id,
                    filename=upload.filename,
                    etag=etag,
                )
                await self.videos.delete_upload(session, upload.id)
        if refusal is not None:
            raise refusal
        logger.info("video_uploaded", video_id=video.id, size=video.size, mimetype=mimetype)
        return video

    async def abort(self, lookup: contract.UploadLookup) -> None:
        async with self.database.transaction() as session:
            upload = await self._upload(session, lookup.upload_id, lookup.user_id, lock=True)
            await self._drop(session, upload)

    async def sweep(self, idle_for: timedelta) -> int:
        """Abort uploads with no sign of life for ``idle_for``; returns how many."""
        async with self.database.transaction() as session:
            before = datetime.now(UTC) - idle_for
            stale = await self.videos.idle_uploads(session, before=before, limit=SWEEP_BATCH)
            for upload in stale:
                await self._drop(session, upload)
        if stale:
            logger.info("uploads_swept", count=len(stale))
        return len(stale)

    # -- the steps ------------------------------------------------------------------------------

    async def _check(self, upload: Upload) -> tuple[Mimetype, int, str]:
        """Complete a multipart upload, then the stored object's type, size and ETag."""
        key = key_of(upload.id)
        if upload.store_upload_id is not None:
            try:
                parts = await self.store.parts(key, upload.store_upload_id)
            except ObjectMissing:
                parts = None  # completed by an earlier finish that failed after it
            if parts is not None:
                self._check_parts(upload, parts)
                await self.store.complete(key, upload.store_upload_id, parts)
        try:
            head = await self.store.head(key, SNIFF_BYTES)
        except ObjectMissing:
            raise UploadIncomplete("The video has not arrived yet") from None
        if head.size > self.max_upload_bytes:
            raise UploadTooLarge(f"Video larger than {self.max_upload_bytes} bytes")
        if upload.size is not None and head.size != upload.size:
            raise InvalidVideoData(
                f"The upload has {head.size} bytes, not the {upload.size} declared"
            )
        mimetype = sniff_video(head.data)
        if mimetype is None:
            raise UnsupportedVideoType()
        return mimetype, head.size, head.etag

    def _check_parts(self, upload: Upload, parts: list[Part]) -> None:
        """Parts 1..n, all there (UploadIncomplete), and no more bytes than allowed."""
        if sum(part.size for part in parts) > self.max_upload_bytes:
            raise UploadTooLarge(f"Video larger than {self.max_upload_bytes} bytes")
        numbers = [part.number for part in parts]
        expected = self._numbers(upload.size) or list(range(1, len(parts) + 1))
        if not parts or numbers != expected:
            raise UploadIncomplete()

    async def _drop(self, session: AsyncSession, upload: Upload) -> None:
        key = key_of(upload.id)
        if upload.store_upload_id is not None:
            await self.store.abort(key, upload.store_upload_id)
        await self.store.delete(key)  # a single PUT, or a multipart upload already completed
        await self.videos.delete_upload(session, upload.id)

    async def _stored_parts(self, upload: Upload) -> list[Part]:
        key = key_of(upload.id)
        if upload.store_upload_id is not None:
            try:
                return await self.store.parts(key, upload.store_upload_id)
            except ObjectMissing:
                raise UploadNotFound() from None
        try:
            head = await self.store.head(key, 1)
        except ObjectMissing:
            return []
        return [Part(1, head.size, head.etag)]

    async def _upload(
        self, session: AsyncSession, upload_id: str, user_id: str, *, lock: bool = False
    ) -> Upload:
        found = await self.videos.upload(
            session, parse_id(upload_id, UploadNotFound), user_id=user_id, lock=lock
        )
        if found is None:
            raise UploadNotFound()
        return found

    async def _part_url(
        self, key: str, store_upload_id: str | None, number: int
    ) -> contract.PartUrl:
        if store_upload_id is None:
            if number != 1:
                raise UploadTooLarge(f"Video larger than {self.part_size} bytes declared")
            url = await self.store.put_url(key, self.url_ttl)
        else:
            url = await self.store.part_url(key, store_upload_id, number, self.url_ttl)
        return contract.PartUrl(number=number, url=url)

    def _numbers(self, size: int | None) -> list[int]:
        """The part numbers of an upload of ``size`` bytes (none known: [])."""
        return [] if size is None else list(range(1, self._part_count(size) + 1))

    def _part_count(self, size: int) -> int:
        return max(1, math.ceil(size / self.part_size))

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + self.url_ttl
