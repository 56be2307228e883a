"""The analytics service's patterns (``vidmesh.contracts.analytics``): one method each, no SQL."""

from __future__ import annotations

from vidmesh.contracts import analytics as contract
from vidmesh.kit.db import Database
from vidmesh.transport import Router, TcpServer

from vidmesh_analytics.repository import DownloadRepository


class AnalyticsHandlers:
    """Download counts, read each in its own transaction."""

    def __init__(self, database: Database, downloads: DownloadRepository) -> None:
        self.database = database
        self.downloads = downloads

    async def top_videos(self, query: contract.TopVideosQuery) -> list[contract.VideoDownloads]:
        async with self.database.transaction() as session:
            rows = await self.downloads.top(session, query.limit)
        return [contract.VideoDownloads(video_id=v, downloads=n) for v, n in rows]

    async def video_stats(self, query: contract.VideoStatsQuery) -> contract.VideoDownloads:
        async with self.database.transaction() as session:
            downloads = await self.downloads.downloads_of(session, query.id)
        return contract.VideoDownloads(video_id=query.id, downloads=downloads)


def build_router(handlers: AnalyticsHandlers) -> Router:
    """A router answering every pattern of ``vidmesh.contracts.analytics`` with ``handlers``,
    over TCP (the gateway's queries)."""
    router = Router(transports=[TcpServer.name])
    router.message(contract.TOP_VIDEOS)(handlers.top_videos)
    router.message(contract.VIDEO_STATS)(handlers.video_stats)
    return router
