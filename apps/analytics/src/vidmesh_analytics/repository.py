"""Every SQL statement of the analytics service. Methods take the caller's session and never
commit: the handler (or the event consumer) owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.kit import inbox
from vidmesh.kit.inbox import claimed

from vidmesh_analytics.models import VideoDownloads, processed_events


class DownloadRepository:
    async def count_once(self, session: AsyncSession, event_id: str, video_id: str) -> bool:
        """Add one download for event ``event_id``, unless that event was counted before (then
        nothing changes): the inbox claim and the upsert are one statement, so they commit
        together even in autocommit. An upsert: two first downloads of a video, counted at once,
        meet on the primary key and give one row with 2, not two rows or a lost count. True when
        this call counted it."""
        claim = claimed(processed_events, event_id)
        statement = (
            insert(VideoDownloads)
            .from_select(
                ["video_id", "downloads"], select(literal(video_id), literal(1)).select_from(claim)
            )
            .on_conflict_do_update(
                index_elements=[VideoDownloads.video_id],
                set_={"downloads": VideoDownloads.downloads + 1},
            )
            .returning(VideoDownloads.video_id)
            .add_cte(claim)
        )
        return (await session.execute(statement)).first() is not None

    async def top(self, session: AsyncSession, limit: int) -> list[tuple[str, int]]:
        """``(video id, downloads)``, most downloaded first, ties by video id."""
        statement = (
            select(VideoDownloads.video_id, VideoDownloads.downloads)
            .order_by(VideoDownloads.downloads.desc(), VideoDownloads.video_id)
            .limit(limit)
        )
        rows = await session.execute(statement)
        return [(video_id, downloads) for video_id, downloads in rows]

    async def downloads_of(self, session: AsyncSession, video_id: str) -> int:
        """The video's count; 0 for a video never downloaded."""
        statement = select(VideoDownloads.downloads).where(VideoDownloads.video_id == video_id)
        return await session.scalar(statement) or 0

    async def purge_processed(self, session: AsyncSession, before: datetime) -> int:
        """Forget the ids of the events counted before ``before``; returns how many."""
        return await inbox.purge(session, processed_events, before=before)
