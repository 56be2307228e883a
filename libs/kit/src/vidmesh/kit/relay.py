"""OutboxRelay: publishes a service's outbox rows to Kafka, in id order, at least once.

One background task. It wakes when the service calls :meth:`OutboxRelay.wake` (after the
transaction that wrote an event committed) or every ``poll_interval``; it locks a batch of
unpublished rows (``FOR UPDATE SKIP LOCKED``, so several replicas share the work), sends them
all, awaits the acknowledgements together and records each row's partition and offset.

A broker that lost its log (the embedded one keeps nothing on disk) is noticed two ways: an
acknowledged offset at or below one already recorded for that partition, and, every
``check_interval``, a partition whose end offset is at or below the first offset of the newest
batch recorded there (not the last: tansu reports the end of a log as the first offset of its
last record batch plus one). The retained rows of that partition are then queued again
(consumers drop event ids they have seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from vidmesh.kit import outbox
from vidmesh.kit.db import Database
from vidmesh.kit.outbox import OutboxTable, PendingEvent, Published
from vidmesh.transport.kafka.security import KafkaSecurity, client_kwargs

logger = structlog.get_logger("vidmesh.kit.relay")

Partition = outbox.TopicPartition


class OutboxRelay:
    """Publishes ``table``'s rows from ``database`` to the brokers at ``bootstrap``."""

    def __init__(
        self,
        database: Database,
        table: OutboxTable,
        bootstrap: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        check_interval: float = 5.0,
        retention: timedelta = timedelta(days=7),
        purge_interval: float = 300.0,
        linger_ms: int = 1,
        request_timeout_ms: int = 5_000,
        max_backoff: float = 5.0,
        client_id: str = "vidmesh-outbox",
        security: KafkaSecurity | None = None,
    ) -> None:
        self.database = database
        self.table = table
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        self.retention = retention
        self.purge_interval = purge_interval
        self.max_backoff = max_backoff
        self._kafka_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "request_timeout_ms": request_timeout_ms,
            **client_kwargs(security),
        }
        self._linger_ms = linger_ms
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._marks: dict[Partition, int] = {}
        """Per partition, the offset where the newest acknowledged batch starts."""
        self._next_check = 0.0
        self._next_purge = 0.0
        self.published = 0
        """Records acknowledged since start (for tests and metrics)."""

    def wake(self) -> None:
        """Publish soon: call after committing a transaction that added events."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start the background task; returns at once (the broker may still be down)."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the batch in flight finish, then stop the Kafka clients; unpublished rows wait
        in the table. After ``timeout`` seconds the task is cancelled."""
        task, self._task = self._task, None
        if task is not None:
            # Not a cancel first: aiokafka leaks the socket of a client cancelled while starting.
            self._stopping.set()
            self._wakeup.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._disconnect()

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self._connect()
                await self._cycle()
                backoff = 0.1
            except Exception as error:  # the relay's boundary: log, back off, try again
                logger.warning("outbox_relay_failed", error=repr(error), retry_in=round(backoff, 2))
                await self._disconnect()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _cycle(self) -> None:
        if self._stopping.is_set():
            return
        now = time.monotonic()
        if now >= self._next_check:
            await self.check_broker()
            self._next_check = now + self.check_interval
            if self._producer is None:  # it lost data: reconnect before publishing again
                return
        if now >= self._next_purge:
            await self.purge()
            self._next_purge = now + self.purge_interval
        self._wakeup.clear()
        sent = await self.publish_batch()
        if sent < self.batch_size:  # a full batch means more are waiting: no pause
            timeout = min(self.poll_interval, max(self._next_check - now, 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _connect(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **self._kafka_options, acks="all", linger_ms=self._linger_ms, max_batch_size=262_144
        )
        consumer = AIOKafkaConsumer(**self._kafka_options, enable_auto_commit=False)
        try:
            await producer.start()
            await consumer.start()
        except BaseException:
            await producer.stop()  # a client that failed to start is still open
            await consumer.stop()
            raise
        self._producer, self._consumer = producer, consumer
        async with self.database.transaction() as session:
            self._marks = await outbox.newest_batch_starts(session, self.table)
        self._next_check = 0.0  # (re)connected: the broker may be a new one, look at once
        logger.info("outbox_relay_connected", bootstrap=self.bootstrap)

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        consumer, self._consumer = self._consumer, None
        for client in (producer, consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    async def publish_batch(self) -> int:
        """Publish up to ``batch_size`` rows; returns how many were acknowledged."""
        assert self._producer is not None
        async with self.database.transaction() as session:
            events = await outbox.claim_batch(session, self.table, self.batch_size)
            if not events:
                return 0
            published = await self._send(events)
            await outbox.mark_published(session, self.table, published)
            lost = self._lost_in(events, published)
            for partition in lost:
                count = await outbox.mark_unpublished(
                    session, self.table, partition, keep=[e.id for e in events]
                )
                _log_republished(partition, count, reason="offset_went_back")
        if lost:
            self._wakeup.set()
            await self._disconnect()  # as in check_broker: fresh metadata first
        self.published += len(published)
        return len(published)

    async def _send(self, events: Sequence[PendingEvent]) -> list[Published]:
        """Send every event, then await every acknowledgement (not one round trip each)."""
        assert self._producer is not None
        futures = [
            await self._producer.send(event.topic, value=event.value, key=event.key)
            for event in events
        ]
        # return_exceptions: every future is awaited even when one failed, so none is left
        # with an unretrieved exception; the batch is retried whole (at least once).
        results = await asyncio.gather(*futures, return_exceptions=True)
        published = []
        for event, result in zip(events, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            published.append(Published(event.id, result.partition, result.offset))
        return published

    def _lost_in(
        self, events: Sequence[PendingEvent], published: Sequence[Published]
    ) -> list[Partition]:
        """Partitions where the broker acknowledged an offset it had already given out (its log
        restarted); records where this batch starts in each partition."""
        starts: dict[Partition, int] = {}
        for event, result in zip(events, published, strict=True):
            key = (event.topic, result.partition)
            starts[key] = min(starts.get(key, result.offset), result.offset)
        lost = [key for key, start in starts.items() if start <= self._marks.get(key, -1)]
        self._marks.update(starts)
        return lost

    async def check_broker(self) -> int:
        """Queue again the rows of every partition the broker no longer holds; returns how
        many rows."""
        lost = await self._lost_partitions()
        if not lost:
            return 0
        total = 0
        async with self.database.transaction() as session:
            for partition in lost:
                count = await outbox.mark_unpublished(session, self.table, partition)
                _log_republished(partition, count, reason="broker_log_shorter")
                self._marks.pop(partition, None)
                total += count
        self._wakeup.set()
        # A new broker behind the same address: the clients' cached metadata would still send
        # to partitions it does not list (tansu acknowledges them, but no consumer sees them).
        # Fresh clients ask afresh, which also makes it create the topic.
        await self._disconnect()
        return total

    async def _lost_partitions(self) -> list[Partition]:
        assert self._consumer is not None
        assert self._producer is not None
        if not self._marks:
            return []
        existing = await self._consumer.topics()  # asks the broker, not a cache
        partitions = {
            topic: await self._producer.partitions_for(topic)
            for topic, _ in self._marks
            if topic in existing
        }
        present = [
            TopicPartition(topic, number)
            for topic, number in self._marks
            if number in partitions.get(topic, ())
        ]
        # end_offsets may wait forever for a partition the broker does not know: bound it.
        timeout = self._kafka_options["request_timeout_ms"] / 1000
        ends = await asyncio.wait_for(self._consumer.end_offsets(present), timeout)
        return [
            (topic, number)
            for (topic, number), offset in self._marks.items()
            if ends.get(TopicPartition(topic, number), 0) <= offset
        ]

    async def purge(self) -> int:
        """Delete rows published longer ago than the retention period; returns how many."""
        before = datetime.now(UTC) - self.retention
        async with self.database.transaction() as session:
            count = await outbox.purge_published(session, self.table, before=before)
        if count:
            logger.info("outbox_purged", rows=count)
        return count


def _log_republished(partition: Partition, count: int, *, reason: str) -> None:
    topic, number = partition
    logger.warning("outbox_republished", topic=topic, partition=number, rows=count, reason=reason)
