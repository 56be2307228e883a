"""``/api/analytics``: the most downloaded videos, with their titles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from vidmesh.contracts.analytics import MAX_TOP_LIMIT

from vidmesh_api_gateway.dependencies import AnalyticsClientDep, VideoClientDep
from vidmesh_api_gateway.schemas import TopVideo, error_responses

router = APIRouter(prefix="/api/analytics", tags=["Analytics"])


@router.get("/top", responses=error_responses(400))
async def top_videos(
    analytics: AnalyticsClientDep,
    videos: VideoClientDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TOP_LIMIT)] = 10,
) -> list[TopVideo]:
    """The ``limit`` most downloaded videos, most first (public); titles in one batched call."""
    counts = await analytics.top_videos(limit)
    if not counts:
        return []
    titles = {
        video.id: video.title for video in await videos.find_many([c.video_id for c in counts])
    }
    return [
        TopVideo(
            video_id=count.video_id, title=titles.get(count.video_id), downloads=count.downloads
        )
        for count in counts
    ]
