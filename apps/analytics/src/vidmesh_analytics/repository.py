"""Every SQL statement of the analytics service. Methods take the caller's session and never
commit: the handler (or the event consumer) owns the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidmesh_analytics.models import VideoDownloads


class DownloadRepository:
    async def count(self, session: AsyncSession, video_id: str) -> None:
        """Add one download. A single upsert: two first downloads of a video, counted at once,
        meet on the primary key and give one row with 2, not two rows or a lost count."""
        statement = insert(VideoDownloads).values(video_id=video_id, downloads=1)
        statement = statement.on_conflict_do_update(
            index_elements=[VideoDownloads.video_id],
            set_={"downloads": VideoDownloads.downloads + 1},
        )
        await session.execute(statement)

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
