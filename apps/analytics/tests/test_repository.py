"""The download repository on the real database: one row per video, counts that add up."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from vidmesh.kit.db import Database

from vidmesh_analytics.models import VideoDownloads
from vidmesh_analytics.repository import DownloadRepository

downloads = DownloadRepository()

BASE = 2 * 10**12
"""Above every count the other tests make (the handler tests seed 10**12 and up)."""


async def test_the_first_count_of_a_video_makes_its_row_with_one(
    database: Database, video_id: str
) -> None:
    async with database.transaction() as session:
        assert await downloads.count_once(session, event_id(), video_id)
        assert await downloads.downloads_of(session, video_id) == 1


async def test_each_further_event_adds_one(database: Database, video_id: str) -> None:
    for _ in range(3):
        async with database.autocommit() as session:
            assert await downloads.count_once(session, event_id(), video_id)

    async with database.transaction() as session:
        assert await downloads.downloads_of(session, video_id) == 3


async def test_an_event_counted_before_changes_nothing(database: Database, video_id: str) -> None:
    seen = event_id()
    async with database.autocommit() as session:
        assert await downloads.count_once(session, seen, video_id)
        assert not await downloads.count_once(session, seen, video_id)
        assert await downloads.downloads_of(session, video_id) == 1


async def test_a_video_never_counted_has_zero(database: Database, video_id: str) -> None:
    async with database.transaction() as session:
        assert await downloads.downloads_of(session, video_id) == 0


async def test_top_orders_by_downloads_then_video_id_and_stops_at_the_limit(
    database: Database,
) -> None:
    most, tie_a, tie_b, least = (str(uuid.uuid4()) for _ in range(4))
    tie_a, tie_b = sorted([tie_a, tie_b])
    counts = {least: BASE + 1, tie_b: BASE + 3, most: BASE + 5, tie_a: BASE + 3}
    # A session never committed: the rows vanish with it, out of the other tests' way.
    async with database.sessions() as session:
        await session.execute(insert(VideoDownloads).values(rows(counts)))

        top = await downloads.top(session, 3)

    assert top == [(most, BASE + 5), (tie_a, BASE + 3), (tie_b, BASE + 3)]


def event_id() -> str:
    return str(uuid.uuid4())


def rows(counts: dict[str, int]) -> list[dict[str, object]]:
    return [{"video_id": video_id, "downloads": n} for video_id, n in counts.items()]
