"""The analytics service on a real database and a real broker.

``database_url`` (migrated once per session); ``analytics`` (the whole service, built by
``build_service``, on a free port, in its own consumer group, partitions assigned, with a TCP
client); ``start_analytics`` (the same with other settings); ``events`` (publishes
``video_downloaded`` records, waits until a group committed them, reads dead letters).

The topic name is fixed, so tests share it: each test uses its own video ids (``video_id``)
and consumer group, and asserts on those only.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from vidmesh.contracts.analytics import VIDEO_STATS
from vidmesh.contracts.events import VIDEO_DOWNLOADED, VideoDownloaded
from vidmesh.kit.db import Database
from vidmesh.transport import Microservice, RemoteError, TcpClient, TcpServer
from vidmesh.transport.kafka import KafkaTransport, create_topics
from vidmesh.transport.kafka.headers import dead_letter_topic_of

from vidmesh_analytics.main import build_service
from vidmesh_analytics.settings import Settings

PARTITIONS = 4
FAST_GROUP = {"kafka_session_timeout_ms": 2_000, "kafka_heartbeat_interval_ms": 250}
"""What tansu needs for a group join in about 1 s (vidmesh.devstack.broker.FAST_GROUP_JOIN)."""


@pytest.fixture(scope="session")
def database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_analytics")


@pytest.fixture(scope="session")
def topics(kafka_bootstrap: str) -> str:
    """The bootstrap address, once ``video_downloaded`` and its dead-letter topic exist."""
    names = [VIDEO_DOWNLOADED, dead_letter_topic_of(VIDEO_DOWNLOADED)]
    asyncio.run(create_topics(kafka_bootstrap, names, partitions=PARTITIONS, exist_ok=True))
    return kafka_bootstrap


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def settings(database_url: str, topics: str, unique_group: str) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=database_url,
        kafka_bootstrap=topics,
        kafka_group_id=unique_group,
        drain_timeout=5.0,
        tls_enabled=False,  # in-process, plain TCP; mutual TLS: vidmesh.transport's tests
        **FAST_GROUP,
    )


@pytest.fixture
async def start_analytics(settings: Settings) -> AsyncIterator[StartAnalytics]:
    """Starts the service (``settings`` with overrides), stopped when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Analytics:
            chosen = Settings(**{**settings.model_dump(), **overrides})
            service = await stack.enter_async_context(build_service(chosen))
            async with asyncio.timeout(30):
                await kafka_of(service).wait_assigned()
            server = next(t for t in service.transports if isinstance(t, TcpServer))
            client = await stack.enter_async_context(TcpClient("127.0.0.1", server.port))
            return Analytics(service, client, chosen.kafka_group_id)

        yield start


@pytest.fixture
async def analytics(start_analytics: StartAnalytics) -> Analytics:
    return await start_analytics()


@pytest.fixture
def video_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def events(topics: str) -> AsyncIterator[Events]:
    producer = AIOKafkaProducer(bootstrap_servers=topics, acks="all")
    await producer.start()
    try:
        yield Events(topics, producer)
    finally:
        await producer.stop()


def kafka_of(service: Microservice) -> KafkaTransport:
    return next(t for t in service.transports if isinstance(t, KafkaTransport))


class Analytics:
    """A started analytics service, a TCP client for it, and its consumer group."""

    def __init__(self, service: Microservice, client: TcpClient, group: str) -> None:
        self.service = service
        self.client = client
        self.group = group

    async def downloads_of(self, video_id: str) -> int:
        answer = await self.client.send(VIDEO_STATS, {"id": video_id})
        return cast(int, answer["downloads"])

    async def wait_for_downloads(self, video_id: str, count: int, timeout: float = 20.0) -> None:
        """Poll ``videoStats`` until the video has ``count`` downloads."""
        seen: int | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:  # polling on purpose: the count is behind a remote call
                    seen = await self._downloads_or_none(video_id)
                    if seen == count:
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"{video_id} has {seen} downloads, not {count}, after {timeout} s")

    async def _downloads_or_none(self, video_id: str) -> int | None:
        try:
            return await self.downloads_of(video_id)
        except RemoteError:  # the database is not reachable (yet)
            return None


StartAnalytics = Callable[..., Awaitable[Analytics]]


class Events:
    """Publishes to ``video_downloaded`` and reads what the consumers left behind."""

    def __init__(self, bootstrap: str, producer: AIOKafkaProducer) -> None:
        self.bootstrap = bootstrap
        self.producer = producer

    @staticmethod
    def downloaded(video_id: str, event_id: str | None = None) -> VideoDownloaded:
        """A ``video_downloaded`` event as the video service's relay publishes it."""
        return VideoDownloaded(
            id=video_id,
            event_id=event_id or str(uuid.uuid4()),
            user_id=str(uuid.uuid4()),
            downloaded_at=datetime.now(UTC),
        )

    async def publish(self, event: VideoDownloaded, *, partition: int | None = None) -> Any:
        """Publish with the video id as key; returns the record's metadata (partition, offset)."""
        return await self.publish_raw(
            orjson.dumps(event.to_wire()), key=event.id, partition=partition
        )

    async def publish_raw(self, value: bytes, *, key: str, partition: int | None = None) -> Any:
        return await self.producer.send_and_wait(
            VIDEO_DOWNLOADED, value=value, key=key.encode(), partition=partition
        )

    async def wait_committed(self, group: str, *records: Any, timeout: float = 20.0) -> None:
        """Wait until ``group`` committed past each record: the consumer handled it."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            async with asyncio.timeout(timeout):
                for record in records:
                    partition = TopicPartition(VIDEO_DOWNLOADED, record.partition)
                    while True:  # polling on purpose: the offset is behind a remote call
                        if (await consumer.committed(partition) or 0) > record.offset:
                            break
                        await asyncio.sleep(0.05)
        finally:
            await consumer.stop()

    async def dead_letters(self, key: str, count: int = 1, timeout: float = 20.0) -> list[Any]:
        """The first ``count`` records keyed ``key`` on the dead-letter topic."""
        topic = dead_letter_topic_of(VIDEO_DOWNLOADED)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        found: list[Any] = []
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            async with asyncio.timeout(timeout):
                while len(found) < count:
                    for batch in (await consumer.getmany(timeout_ms=100)).values():
                        found.extend(r for r in batch if r.key == key.encode())
        finally:
            await consumer.stop()
        return found
