"""The analytics patterns over real TCP, against the real database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql import insert
from vidmesh.contracts import HEALTH
from vidmesh.contracts.analytics import TOP_VIDEOS, VIDEO_STATS
from vidmesh.kit.db import Database
from vidmesh.transport import RemoteError

from vidmesh_analytics.models import VideoDownloads

Analytics = Any  # conftest's helper (test modules cannot import conftest)

# Far above what the other tests count, so these videos are the top of the shared table.
BASE = 10**12


async def test_top_videos_answers_the_most_downloaded_first_and_ties_by_video_id(
    analytics: Analytics, database: Database
) -> None:
    most, tie_b, tie_a, least = (f"{uuid.uuid4()}-{n}" for n in "dcba")
    tie_a, tie_b = sorted([tie_a, tie_b])
    await seed(database, {least: BASE + 1, tie_b: BASE + 2, most: BASE + 3, tie_a: BASE + 2})

    top = await analytics.client.send(TOP_VIDEOS, {"limit": 4})

    assert top == [
        {"videoId": most, "downloads": BASE + 3},
        {"videoId": tie_a, "downloads": BASE + 2},
        {"videoId": tie_b, "downloads": BASE + 2},
        {"videoId": least, "downloads": BASE + 1},
    ]
    assert await analytics.client.send(TOP_VIDEOS, {"limit": 2}) == top[:2]


async def test_top_videos_without_a_limit_answers_ten(
    analytics: Analytics, database: Database
) -> None:
    await seed(database, {str(uuid.uuid4()): BASE for _ in range(11)})

    assert len(await analytics.client.send(TOP_VIDEOS, {})) == 10


@pytest.mark.parametrize("limit", [0, 101, "many"])
async def test_top_videos_with_a_bad_limit_answers_400(analytics: Analytics, limit: Any) -> None:
    with pytest.raises(RemoteError) as caught:
        await analytics.client.send(TOP_VIDEOS, {"limit": limit})

    assert caught.value.status_code == 400


async def test_video_stats_answers_the_count_of_a_video(
    analytics: Analytics, database: Database, video_id: str
) -> None:
    await seed(database, {video_id: 7})

    stats = await analytics.client.send(VIDEO_STATS, {"id": video_id})

    assert stats == {"videoId": video_id, "downloads": 7}


async def test_video_stats_of_a_video_never_downloaded_answers_zero(
    analytics: Analytics, video_id: str
) -> None:
    stats = await analytics.client.send(VIDEO_STATS, {"id": video_id})

    assert stats == {"videoId": video_id, "downloads": 0}


async def test_video_stats_without_an_id_answers_400(analytics: Analytics) -> None:
    with pytest.raises(RemoteError) as caught:
        await analytics.client.send(VIDEO_STATS, {})

    assert caught.value.status_code == 400


async def test_health_answers_ok_with_the_database_and_the_broker_checked(
    analytics: Analytics,
) -> None:
    assert await analytics.client.send(HEALTH) == {
        "service": "analytics",
        "ok": True,
        "checks": {"database": True, "broker": True},
    }


async def seed(database: Database, counts: dict[str, int]) -> None:
    rows = [{"video_id": video_id, "downloads": n} for video_id, n in counts.items()]
    async with database.transaction() as session:
        await session.execute(insert(VideoDownloads).values(rows))
