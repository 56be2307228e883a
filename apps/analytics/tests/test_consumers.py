"""Counting ``video_downloaded`` events exactly once in effect, over the real broker and database.

Each test uses its own consumer group (so it reads the shared topic from the start) and its own
video ids; the inbox makes earlier tests' events, read again, change nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pydantic
import pytest
from sqlalchemy import func, select
from vidmesh.devstack.databases import create_role_and_database, drop_database
from vidmesh.kit.db import Database
from vidmesh.kit.migrations import upgrade_async
from vidmesh.transport.kafka import headers as h

from vidmesh_analytics.consumers import CountableDownload, DownloadConsumer
from vidmesh_analytics.models import VideoDownloads
from vidmesh_analytics.repository import DownloadRepository

Analytics = Any  # conftest's helpers (test modules cannot import conftest)
Events = Any


async def test_a_downloaded_event_is_counted_once(
    analytics: Analytics, events: Events, video_id: str
) -> None:
    record = await events.publish(events.downloaded(video_id))

    await events.wait_committed(analytics.group, record)

    assert await analytics.downloads_of(video_id) == 1


async def test_an_event_delivered_twice_counts_once(
    analytics: Analytics, events: Events, video_id: str
) -> None:
    event = events.downloaded(video_id)
    first = await events.publish(event)
    again = await events.publish(event)

    await events.wait_committed(analytics.group, first, again)

    assert await analytics.downloads_of(video_id) == 1


async def test_two_events_of_a_new_video_on_two_partitions_give_one_row_with_two(
    analytics: Analytics, events: Events, database: Database, video_id: str
) -> None:
    # Two partitions have two workers, so both first counts of the video run at once.
    one = await events.publish(events.downloaded(video_id), partition=0)
    two = await events.publish(events.downloaded(video_id), partition=1)

    await events.wait_committed(analytics.group, one, two)

    assert await analytics.downloads_of(video_id) == 2
    assert await rows_of(database, video_id) == 1


async def test_a_new_group_reading_the_topic_again_changes_no_count(
    analytics: Analytics, start_analytics: Any, events: Events, unique_group: str, video_id: str
) -> None:
    record = await events.publish(events.downloaded(video_id))
    await events.wait_committed(analytics.group, record)

    # As after a broker restart, when the video service's relay publishes its outbox again.
    again = await start_analytics(kafka_group_id=f"{unique_group}_again")
    await events.wait_committed(again.group, record)

    assert await again.downloads_of(video_id) == 1


async def test_a_malformed_event_is_dead_lettered_and_the_next_one_counted(
    analytics: Analytics, events: Events, video_id: str
) -> None:
    await events.publish_raw(b'{"id": "%s"}' % video_id.encode(), key=video_id)
    record = await events.publish(events.downloaded(video_id))

    await events.wait_committed(analytics.group, record)

    assert await analytics.downloads_of(video_id) == 1
    (dead,) = await events.dead_letters(video_id)
    headers = dict(dead.headers)
    assert headers[h.DLT_ATTEMPTS] == b"1"
    assert headers[h.DLT_ORIGINAL_TOPIC] == b"video_downloaded"


@pytest.mark.parametrize("field", ["id", "event_id"], ids=["video-id", "event-id"])
@pytest.mark.parametrize("value", ["", "a\x00b", "x" * 256], ids=["empty", "nul", "too-long"])
def test_an_event_whose_ids_cannot_be_stored_is_malformed(field: str, value: str) -> None:
    fields = {"id": "v", "event_id": "e", "downloaded_at": "2026-01-01T00:00:00Z", field: value}

    with pytest.raises(pydantic.ValidationError):
        CountableDownload.model_validate(fields)


async def test_concurrent_first_events_of_a_video_add_up(database: Database, video_id: str) -> None:
    consumer = DownloadConsumer(database, DownloadRepository())

    await asyncio.gather(*(consumer.video_downloaded(countable(video_id)) for _ in range(10)))

    assert await count_of(database, video_id) == 10
    assert await rows_of(database, video_id) == 1


async def test_concurrent_deliveries_of_one_event_count_it_once(
    database: Database, video_id: str
) -> None:
    consumer = DownloadConsumer(database, DownloadRepository())
    event = countable(video_id)

    await asyncio.gather(*(consumer.video_downloaded(event) for _ in range(5)))

    assert await count_of(database, video_id) == 1


@pytest.fixture
async def own_database(postgres_url: str) -> AsyncIterator[tuple[str, str]]:
    """A migrated database with a role of its own, which a test may lock out: (URL, role)."""
    name = f"test_analytics_outage_{uuid.uuid4().hex[:8]}"
    url = await create_role_and_database(postgres_url, name, uuid.uuid4().hex)
    await upgrade_async("vidmesh_analytics", url)
    try:
        yield url, name
    finally:
        await drop_database(postgres_url, name, role=True)


async def test_an_event_met_by_a_database_outage_is_counted_once_the_database_is_back(
    start_analytics: Any,
    events: Events,
    own_database: tuple[str, str],
    postgres_url: str,
    video_id: str,
) -> None:
    url, role = own_database
    analytics = await start_analytics(database_url=url)
    await events.wait_committed(analytics.group, await events.publish(events.downloaded(video_id)))

    await lock_out(postgres_url, role)
    record = await events.publish(events.downloaded(video_id))
    # Longer than the transport's default policy (5 tries, 1.5 s) would retry before giving up.
    await asyncio.sleep(3)
    await let_in(postgres_url, role)

    await events.wait_committed(analytics.group, record)
    assert await analytics.downloads_of(video_id) == 2


def countable(video_id: str, event_id: str | None = None) -> CountableDownload:
    return CountableDownload(
        id=video_id, event_id=event_id or str(uuid.uuid4()), downloaded_at="2026-01-01T00:00:00Z"
    )


async def count_of(database: Database, video_id: str) -> int:
    async with database.transaction() as session:
        return await DownloadRepository().downloads_of(session, video_id)


async def rows_of(database: Database, video_id: str) -> int:
    statement = select(func.count()).where(VideoDownloads.video_id == video_id)
    async with database.transaction() as session:
        return int(await session.scalar(statement) or 0)


async def lock_out(admin_url: str, role: str) -> None:
    """The role can no longer log in, and its open connections are ended: a database outage."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'ALTER ROLE "{role}" NOLOGIN')
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
    finally:
        await connection.close()


async def let_in(admin_url: str, role: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'ALTER ROLE "{role}" LOGIN')
    finally:
        await connection.close()
