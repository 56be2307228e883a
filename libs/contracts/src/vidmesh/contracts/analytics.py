"""The analytics service (Kafka consumer of ``video_downloaded``, TCP 3003 for queries)."""

from __future__ import annotations

from typing import Final

from pydantic import Field
from vidmesh.contracts.strings import Id
from vidmesh.contracts.wire import WireModel

TOP_VIDEOS: Final = {"cmd": "topVideos"}
"""data: :class:`TopVideosQuery` -> list of :class:`VideoDownloads`, most downloaded first."""
VIDEO_STATS: Final = {"cmd": "videoStats"}
"""data: :class:`VideoStatsQuery` -> :class:`VideoDownloads` (0 downloads when never counted)."""

MAX_TOP_LIMIT: Final = 100


class TopVideosQuery(WireModel):
    limit: int = Field(default=10, ge=1, le=MAX_TOP_LIMIT)


class VideoStatsQuery(WireModel):
    id: Id


class VideoDownloads(WireModel):
    video_id: Id
    downloads: int
