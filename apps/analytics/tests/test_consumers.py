"""Counting ``video_downloaded`` events exactly once in effect, over the real broker and database.

Each test uses its own consumer group (so it reads the shared topic from the start) and its own
video ids; the inbox makes earlier tests' events, read again, change nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pydantic
import pytest
from sqlalchemy import func, insert, select
from vidmesh.devstack.databases import create_role_and_database, drop_database
from vidmesh.kit.db import Database
from vidmesh.kit.migrations import upgrade_async
from vidmesh.transport.kafka import headers as h

from vidmesh_analytics.consumers import CountableDownload, DownloadConsumer
from vidmesh_analytics.models import VideoDownloads, processed_events
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


async def test_an_event_failing_past_the_retry_timeout_is_dead_lettered_in_time(
    start_analytics: Any,
    events: Events,
    own_database: tuple[str, str],
    postgres_url: str,
    video_id: str,
) -> None:
    url, role = own_database
    budget = 2.0
    analytics = await start_analytics(
        database_url=url, event_retry_timeout=budget, event_retry_max_backoff=0.2
    )
    await events.wait_committed(analytics.group, await events.publish(events.downloaded(video_id)))

    await lock_out(postgres_url, role)
    try:
        published = time.time()
        record = await events.publish(events.downloaded(video_id))
        (dead,) = await events.dead_letters(video_id)
        await events.wait_committed(analytics.group, record)
    finally:
        await let_in(postgres_url, role)

    # The dead letter's timestamp is its producer's clock (CreateTime), on this machine.
    elapsed = dead.timestamp / 1000 - published
    assert budget <= elapsed < budget + 3.0
    assert int(dict(dead.headers)[h.DLT_ATTEMPTS]) > 2
    await analytics.wait_for_downloads(video_id, 1)  # the dead-lettered event is not counted


async def test_the_inbox_purge_forgets_old_ids_only_and_keeps_the_counts(
    start_analytics: Any, events: Events, own_database: tuple[str, str], video_id: str
) -> None:
    url, _ = own_database
    counted = events.downloaded(video_id)
    now = datetime.now(UTC)
    aged = {"old": now - timedelta(days=16), "recent": now - timedelta(days=14)}
    database = Database(url)
    try:
        async with database.transaction() as session:
            rows = [{"event_id": k, "processed_at": at} for k, at in aged.items()]
            await session.execute(insert(processed_events), rows)
        analytics = await start_analytics(
            database_url=url, inbox_retention_days=15, inbox_purge_interval=0.2
        )
        await events.wait_committed(analytics.group, await events.publish(counted))
        async with asyncio.timeout(10):
            while True:  # polling on purpose: the purge runs on its own schedule
                if "old" not in await inbox_ids(database):
                    break
                await asyncio.sleep(0.1)

        kept = await inbox_ids(database)  # a new group also reads earlier tests' events
        assert "old" not in kept
        assert {"recent", counted.event_id} <= kept
        assert await count_of(database, video_id) == 1
        # a redelivery of the counted event is still recognised
        await events.wait_committed(analytics.group, await events.publish(counted))
        assert await count_of(database, video_id) == 1
    finally:
        await database.close()


async def inbox_ids(database: Database) -> set[str]:
    async with database.transaction() as session:
        return set((await session.scalars(select(processed_events.c.event_id))).all())


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
