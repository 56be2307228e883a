"""The outbox and its relay against a real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select, update
from sqlalchemy.orm import DeclarativeBase
from vidmesh.contracts.events import VideoDownloaded
from vidmesh.devstack._process import free_port
from vidmesh.devstack.broker import TansuBroker
from vidmesh.kit.db import Database
from vidmesh.kit.models import service_metadata
from vidmesh.kit.outbox import OutboxMixin, add_event
from vidmesh.kit.relay import OutboxRelay


class Base(DeclarativeBase):
    metadata = service_metadata()


class Outbox(OutboxMixin, Base):
    pass


@pytest.fixture
async def database(fresh_database: str) -> AsyncIterator[Database]:
    database = Database(fresh_database, pool_size=2)
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield database
    finally:
        await database.close()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


def fast_relay(database: Database, bootstrap: str) -> OutboxRelay:
    return OutboxRelay(
        database,
        Outbox,
        bootstrap,
        poll_interval=0.1,
        check_interval=0.2,
        max_backoff=0.3,
        request_timeout_ms=2_000,
    )


async def write_events(database: Database, topic: str, count: int, *, start: int = 0) -> None:
    async with database.transaction() as session:
        for number in range(start, start + count):
            await add_event(session, Outbox, topic, f"key-{number}", {"n": number})


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 15.0) -> list[tuple]:
    """The first ``count`` records of every partition of ``topic`` as (key, value) pairs."""
    # Without a group id the consumer reads every partition of the topic.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[tuple] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for messages in batch.values():
                    records += [(m.key.decode(), orjson.loads(m.value)) for m in messages]
    finally:
        await consumer.stop()
    return records


async def unpublished(database: Database) -> int:
    async with database.transaction() as session:
        statement = select(func.count()).where(Outbox.published_at.is_(None))
        return int(await session.scalar(statement) or 0)


async def wait_published(database: Database, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while await unpublished(database):  # noqa: ASYNC110 (the condition is in the database)
            await asyncio.sleep(0.05)


async def test_events_are_published_in_order_with_their_key_and_value(
    database: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    async with running(fast_relay(database, kafka_bootstrap)) as relay:
        await write_events(database, unique_topic, 20)
        relay.wake()
        records = await read_topic(kafka_bootstrap, unique_topic, 20)
    assert records == [(f"key-{n}", {"n": n}) for n in range(20)]


async def test_published_rows_record_partition_and_offset(
    database: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    async with running(fast_relay(database, kafka_bootstrap)) as relay:
        await write_events(database, unique_topic, 3)
        relay.wake()
        await wait_published(database)
    async with database.transaction() as session:
        rows = (await session.execute(select(Outbox.kafka_partition, Outbox.kafka_offset))).all()
    assert sorted(rows) == [(0, 0), (0, 1), (0, 2)]


async def test_a_model_is_written_as_its_wire_json(
    database: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    event = VideoDownloaded(id="v1", event_id="e1", downloaded_at=datetime(2025, 1, 2, tzinfo=UTC))
    async with database.transaction() as session:
        await add_event(session, Outbox, unique_topic, "v1", event)
    async with running(fast_relay(database, kafka_bootstrap)):
        [(key, value)] = await read_topic(kafka_bootstrap, unique_topic, 1)
    assert (key, value["eventId"], value["downloadedAt"]) == ("v1", "e1", "2025-01-02T00:00:00Z")


async def test_rows_of_a_rolled_back_transaction_are_never_published(
    database: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    async def failing_change() -> None:
        async with database.transaction() as session:
            await add_event(session, Outbox, unique_topic, "lost", {"n": -1})
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    await write_events(database, unique_topic, 1)
    async with running(fast_relay(database, kafka_bootstrap)) as relay:
        relay.wake()
        await wait_published(database)
    assert relay.published == 1
    assert await read_topic(kafka_bootstrap, unique_topic, 1) == [("key-0", {"n": 0})]


async def test_events_wait_while_the_broker_is_down_and_go_out_when_it_is_back(
    database: Database,
) -> None:
    topic = f"down_{uuid.uuid4().hex}"
    port = free_port()
    broker = TansuBroker(port=port)
    async with running(fast_relay(database, f"127.0.0.1:{port}")) as relay:
        await write_events(database, topic, 5)
        relay.wake()
        await asyncio.sleep(0.5)  # the relay tries, fails and backs off
        assert await unpublished(database) == 5
        await asyncio.to_thread(broker.start)
        try:
            records = await read_topic(broker.bootstrap, topic, 5)
        finally:
            await asyncio.to_thread(broker.stop)
    assert sorted(records) == sorted((f"key-{n}", {"n": n}) for n in range(5))


async def test_events_a_restarted_broker_lost_are_published_again(database: Database) -> None:
    topic = f"restart_{uuid.uuid4().hex}"
    port = free_port()
    async with running(fast_relay(database, f"127.0.0.1:{port}")) as relay:
        with TansuBroker(port=port) as first:
            await write_events(database, topic, 4)
            relay.wake()
            assert len(await read_topic(first.bootstrap, topic, 4)) == 4
            await wait_published(database)
        with TansuBroker(port=port) as second:
            records = await read_topic(second.bootstrap, topic, 4)
            await wait_published(database)
    assert sorted(records) == sorted((f"key-{n}", {"n": n}) for n in range(4))
    assert relay.published == 8


async def test_only_rows_published_before_the_retention_period_are_purged(
    database: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    await write_events(database, unique_topic, 3)
    relay = OutboxRelay(database, Outbox, kafka_bootstrap, retention=timedelta(hours=1))
    async with database.transaction() as session:
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        await session.execute(update(Outbox).where(Outbox.id == 1).values(published_at=long_ago))
        await session.execute(
            update(Outbox).where(Outbox.id == 2).values(published_at=datetime.now(UTC))
        )
    assert await relay.purge() == 1
    async with database.transaction() as session:
        assert list(await session.scalars(select(Outbox.id).order_by(Outbox.id))) == [2, 3]
