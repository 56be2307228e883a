"""The consumer-group loop: partitions handled concurrently, each in order, at least once.

One worker task per assigned partition takes its records one by one. An offset is committed only
once its record was handled (or dead-lettered), after each fetch, when partitions are revoked
and on drain; a consumer that dies before that commit leaves the record to be delivered again.
A partition whose backlog passes ``max_buffered`` is paused until its worker catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

logger = structlog.get_logger("vidmesh.transport.kafka")

Process = Callable[[Any], Awaitable[None]]
"""Handle one record; raise only for a failure of the infrastructure (it is then retried)."""

INFRASTRUCTURE_RETRY_SECONDS = 1.0


class Stopping(Exception):
    """Raised inside ``process`` to give up on the current record because the loop is stopping."""


class PartitionWorker:
    """Handles the records of one partition in order; ``committable`` is the next offset to read."""

    def __init__(self, partition: TopicPartition, process: Process) -> None:
        self.partition = partition
        self.committable: int | None = None
        self._process = process
        self._records: deque[Any] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def backlog(self) -> int:
        return len(self._records)

    def push(self, records: Iterable[Any]) -> None:
        self._records.extend(records)
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            while not self._records:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._stopping:
                return
            record = self._records.popleft()
            if not await self._handle(record):
                return
            self.committable = record.offset + 1

    async def _handle(self, record: Any) -> bool:
        while True:
            try:
                await self._process(record)
                return True
            except Stopping:
                return False
            except Exception:
                # The handler's own failures are retried and dead-lettered by ``process``; what
                # reaches here is the broker being unreachable: keep the record and try again.
                logger.exception("record_processing_failed", partition=str(self.partition))
                if self._stopping:
                    return False
                await asyncio.sleep(INFRASTRUCTURE_RETRY_SECONDS)

    async def stop(self, timeout: float) -> None:
        """Finish the record in hand (up to ``timeout``), then stop; the rest stays uncommitted."""
        self._stopping = True
        self._wakeup.set()
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ConsumerLoop:
    """Fetches for a consumer group and feeds the partition workers."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        process: Process,
        *,
        max_buffered: int = 1000,
        drain_timeout: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self._process = process
        self._max_buffered = max_buffered
        self._drain_timeout = drain_timeout
        self._workers: dict[TopicPartition, PartitionWorker] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._fetching: asyncio.Task[None] | None = None
        self._stopping = False
        self.assigned = asyncio.Event()

    async def start(self, topics: list[str]) -> None:
        await self.consumer.start()
        self.consumer.subscribe(topics, listener=_Rebalance(self))
        self._fetching = asyncio.get_running_loop().create_task(self._fetch_forever())

    async def _fetch_forever(self) -> None:
        while not self._stopping:
            try:
                batches = await self.consumer.getmany(timeout_ms=100, max_records=500)
            except KafkaError:
                logger.exception("kafka_fetch_failed")
                await asyncio.sleep(INFRASTRUCTURE_RETRY_SECONDS)
                continue
            assignment = self.consumer.assignment()
            for partition, records in batches.items():
                if partition in assignment and records:
                    self._feed(partition, records)
            self._resume_caught_up()
            await self.commit()

    def _feed(self, partition: TopicPartition, records: list[Any]) -> None:
        worker = self._workers.get(partition)
        if worker is None:
            worker = self._workers[partition] = PartitionWorker(partition, self._process)
        worker.push(records)
        if worker.backlog >= self._max_buffered and partition not in self._paused:
            self.consumer.pause(partition)
            self._paused.add(partition)

    def _resume_caught_up(self) -> None:
        for partition in list(self._paused):
            worker = self._workers.get(partition)
            if worker is None or worker.backlog < self._max_buffered // 2:
                self._paused.discard(partition)
                if partition in self.consumer.assignment():
                    self.consumer.resume(partition)

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit what the workers finished since the last commit."""
        chosen = self._workers if partitions is None else partitions
        offsets = {}
        for partition in chosen:
            worker = self._workers.get(partition)
            done = worker.committable if worker is not None else None
            if done is not None and self._committed.get(partition) != done:
                offsets[partition] = done
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as error:
            # Typically a rebalance: the records are delivered again (at least once).
            logger.warning("kafka_commit_failed", error=repr(error))
            return
        self._committed.update(offsets)

    async def release(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions leave us: finish their records in hand, commit, and forget them."""
        partitions = [p for p in partitions if p in self._workers]
        await asyncio.gather(*(self._workers[p].stop(self._drain_timeout) for p in partitions))
        await self.commit(partitions)
        for partition in partitions:
            del self._workers[partition]
            self._committed.pop(partition, None)
            self._paused.discard(partition)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop fetching; let each partition finish the record in hand; commit."""
        self._stopping = True
        if self._fetching is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetching
            self._fetching = None
        if timeout is not None:
            self._drain_timeout = timeout
        await self.release(list(self._workers))

    async def stop(self) -> None:
        await self.drain()
        await stop_consumer(self.consumer)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``, finished even when the broker is unreachable.

    aiokafka (0.14) cancels its pending fetches on close and then awaits them bare, so a fetch
    waiting out its retry backoff re-raises that cancellation from ``stop()``, which then skips
    closing its connections. Our own task being cancelled still propagates.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        logger.warning("kafka_consumer_stop_interrupted")
        await consumer._client.close()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            self._loop.assigned.set()
