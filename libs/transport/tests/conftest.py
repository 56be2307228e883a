"""Fixtures for the Kafka tests: topics, clients and services on the real broker.

``kafka`` (a :class:`KafkaKit`) makes uniquely named topics and groups for its test, starts
clients and Microservices with a KafkaTransport, reads topics outside any consumer group, waits
on conditions, and closes everything it started when the test ends. (Test modules are imported
with ``--import-mode=importlib`` and cannot import this file: the helpers live on the kit.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from vidmesh.devstack.broker import FAST_GROUP_JOIN
from vidmesh.devstack.pytest_plugin import unique_name
from vidmesh.transport import Microservice, Router, Transport
from vidmesh.transport.kafka import KafkaClient, KafkaTransport, RetryPolicy, create_topics

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, multiplier=1.0, max_backoff=0.01)
"""Three attempts, 10 ms apart."""


class KafkaKit:
    """What a Kafka test needs; everything it starts is closed when the test ends. The helpers
    that look at a transport's consumer (assignment, paused partitions, crash) read its private
    state: there is no public way to see or do that, and the tests need to."""

    def __init__(
        self, bootstrap: str, request: pytest.FixtureRequest, stack: contextlib.AsyncExitStack
    ) -> None:
        self.bootstrap = bootstrap
        self._request = request
        self._stack = stack

    @staticmethod
    async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``condition`` every 10 ms until it holds; fail after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if condition():
                        return
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pytest.fail(f"condition not met within {timeout} s")

    @staticmethod
    def assigned_partitions(transport: KafkaTransport) -> set[int]:
        """The partitions the group currently gives ``transport``'s consumer (empty if stopped)."""
        loop = transport._loop
        if loop is None:
            return set()
        return {tp.partition for tp in loop.consumer.assignment()}

    @staticmethod
    def paused_partitions(transport: KafkaTransport) -> set[int]:
        """The partitions ``transport``'s consumer has paused (backlog too long)."""
        loop = transport._loop
        if loop is None:
            return set()
        return {tp.partition for tp in loop.consumer.paused()}

    @staticmethod
    async def crash(transport: KafkaTransport) -> None:
        """Kill ``transport`` as a dying process would: handlers and fetching cancelled mid-way,
        the consumer closed, nothing drained and nothing committed. (Closing the consumer sends
        LeaveGroup, so the group rebalances at once instead of after the session timeout.)"""
        loop = transport._loop
        assert loop is not None
        assert loop._fetching is not None
        tasks = [loop._fetching, *(worker._task for worker in loop._workers.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        transport._loop = None
        await loop.consumer.stop()
        assert transport._producer is not None
        await transport._producer.stop()
        transport._producer = None

    def name(self, prefix: str) -> str:
        return unique_name(self._request, prefix, max_len=120)

    def group(self) -> str:
        return self.name("group")

    async def topic(
        self, prefix: str = "t", *, partitions: int = 1, dead_letter: bool = False
    ) -> str:
        """A new topic (and its ``.dlq`` with one partition, if asked)."""
        name = self.name(prefix)
        await create_topics(self.bootstrap, [name], partitions=partitions)
        if dead_letter:
            await create_topics(self.bootstrap, [f"{name}.dlq"], partitions=1)
        return name

    async def client(self) -> KafkaClient:
        client = KafkaClient(self.bootstrap, client_id=self.name("client"))
        await client.start()
        self._stack.push_async_callback(client.stop)
        return client

    async def serve(
        self,
        router: Router,
        group: str,
        *,
        retry: RetryPolicy = FAST_RETRY,
        drain_timeout: float = 5.0,
        max_buffered: int = 1000,
        also: Sequence[Transport] = (),
    ) -> tuple[Microservice, KafkaTransport]:
        """Start a Microservice serving ``router`` from group ``group`` (and over ``also``)."""
        transport = KafkaTransport(
            self.bootstrap,
            group_id=group,
            client_id=self.name("svc"),
            retry=retry,
            consumer_config=FAST_GROUP_JOIN,
            drain_timeout=drain_timeout,
            max_buffered=max_buffered,
        )
        service = Microservice("kafka-test", router, transports=[*also, transport])
        await service.start()
        self._stack.push_async_callback(service.stop)
        return service, transport

    async def read(self, topic: str, count: int, *, timeout: float = 10.0) -> list[Any]:
        """The first ``count`` records of partition 0 of ``topic``, read outside any group."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            records: list[Any] = []
            async with asyncio.timeout(timeout):
                while len(records) < count:
                    batches = await consumer.getmany(timeout_ms=100)
                    for batch in batches.values():
                        records.extend(batch)
            return records
        finally:
            await consumer.stop()

    async def end_offset(self, topic: str, partition: int = 0) -> int:
        """The offset the next record of a partition will get (its record count, here)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            offsets: dict[TopicPartition, int] = await consumer.end_offsets([tp])
            return offsets[tp]
        finally:
            await consumer.stop()

    async def committed(self, group: str, topic: str, partition: int = 0) -> int | None:
        """The offset group ``group`` committed for a partition (None if none), asked without
        joining the group."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            offset: int | None = await consumer.committed(TopicPartition(topic, partition))
            return offset
        finally:
            await consumer.stop()

    async def eventually_committed(
        self, group: str, topic: str, offset: int, partition: int = 0, timeout: float = 10.0
    ) -> None:
        """Wait until group ``group`` committed ``offset`` for the partition."""
        committed: int | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    committed = await self.committed(group, topic, partition)
                    if committed == offset:
                        return
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pytest.fail(f"{group} committed {committed}, not {offset}, within {timeout} s")


@pytest.fixture
async def kafka(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[KafkaKit]:
    async with contextlib.AsyncExitStack() as stack:
        yield KafkaKit(kafka_bootstrap, request, stack)
