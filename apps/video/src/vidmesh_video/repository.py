"""Every SQL statement of the video service's metadata, uploads and events (the bytes are in
the object store). Methods take the caller's session and never commit: the handler owns the
transaction. The hot paths (reads, grants) are Core statements on the tables: the ORM's
identity map and unit of work cost more than the queries themselves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.contracts import video as contract
from vidmesh.contracts.events import VIDEO_DOWNLOADED, VideoDownloaded
from vidmesh.contracts.media import Mimetype
from vidmesh.kit.outbox import add_event

from vidmesh_video.models import Outbox, StoredVideo, Upload

_VIDEOS: Final = cast(Table, StoredVideo.__table__)
_UPLOADS: Final = cast(Table, Upload.__table__)


class VideoRepository:
    async def create_upload(
        self,
        session: AsyncSession,
        *,
        upload_id: uuid.UUID,
        user_id: str,
        filename: str,
        size: int | None,
        part_size: int,
        store_upload_id: str | None,
    ) -> None:
        statement = insert(_UPLOADS).values(
            id=upload_id,
            user_id=user_id,
            filename=filename,
            size=size,
            part_size=part_size,
            store_upload_id=store_upload_id,
        )
        await session.execute(statement)

    async def upload(
        self, session: AsyncSession, upload_id: uuid.UUID, *, user_id: str, lock: bool = False
    ) -> Upload | None:
        """The user's upload (someone else's is None, as a missing one); ``lock`` holds it
        until the transaction ends (finish, abort and the sweeper take turns)."""
        statement = select(Upload).where(Upload.id == upload_id, Upload.user_id == user_id)
        if lock:
            statement = statement.with_for_update()
        return await session.scalar(statement)

    async def touch_upload(self, session: AsyncSession, upload_id: uuid.UUID) -> None:
        """A sign of life: the sweeper leaves the upload alone for another idle period."""
        statement = update(_UPLOADS).where(_UPLOADS.c.id == upload_id).values(updated_at=func.now())
        await session.execute(statement)

    async def delete_upload(self, session: AsyncSession, upload_id: uuid.UUID) -> None:
        await session.execute(delete(_UPLOADS).where(_UPLOADS.c.id == upload_id))

    async def idle_uploads(
        self, session: AsyncSession, *, before: datetime, limit: int = 100
    ) -> list[Upload]:
        """Uploads with no sign of life since ``before``, locked (others' locked ones skipped)."""
        statement = (
            select(Upload)
            .where(Upload.updated_at < before)
            .order_by(Upload.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(await session.scalars(statement))

    async def add_video(
        self,
        session: AsyncSession,
        *,
        video_id: uuid.UUID,
        title: str,
        mimetype: Mimetype,
        size: int,
        user_id: str,
        filename: str,
        etag: str,
    ) -> contract.Video:
        statement = (
            insert(StoredVideo)
            .values(
                id=video_id,
                title=title,
                mimetype=mimetype,
                size=size,
                user_id=user_id,
                filename=filename,
                etag=etag,
            )
            .returning(StoredVideo)
        )
        return _video(await session.scalar(statement))

    async def video(self, session: AsyncSession, video_id: uuid.UUID) -> contract.Video | None:
        row = (await session.execute(select(_VIDEOS).where(_VIDEOS.c.id == video_id))).first()
        return None if row is None else _video(row)

    async def videos(
        self, session: AsyncSession, video_ids: Sequence[uuid.UUID]
    ) -> list[contract.Video]:
        rows = await session.execute(select(_VIDEOS).where(_VIDEOS.c.id.in_(video_ids)))
        return [_video(row) for row in rows]

    async def page(
        self, session: AsyncSession, *, page: int, size: int
    ) -> tuple[list[contract.Video], int]:
        """One page, newest first, and the number of videos."""
        statement = (
            select(_VIDEOS)
            .order_by(_VIDEOS.c.created_at.desc(), _VIDEOS.c.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        )
        rows = await session.execute(statement)
        total = await session.scalar(select(func.count()).select_from(StoredVideo))
        return [_video(row) for row in rows], int(total or 0)

    async def record_download(
        self, session: AsyncSession, video_id: str, *, user_id: str | None
    ) -> None:
        """A ``video_downloaded`` event in the outbox, committed with the caller's transaction."""
        event = VideoDownloaded(
            id=video_id,
            event_id=str(uuid.uuid4()),
            user_id=user_id,
            downloaded_at=datetime.now(UTC),
        )
        await add_event(session, Outbox, VIDEO_DOWNLOADED, video_id, event)


def _video(row: StoredVideo | Row[Any] | None) -> contract.Video:
    assert row is not None
    return contract.Video(
        id=str(row.id),
        title=row.title,
        mimetype=cast(Mimetype, row.mimetype),  # the column holds sniffed types only
        size=row.size,
        user_id=row.user_id,
        filename=row.filename,
        etag=row.etag,
        created_at=row.created_at,
    )
