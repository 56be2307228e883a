"""A real Kafka-protocol broker (tansu): start/stop, topics, a consumer group, the env override."""

from __future__ import annotations

import asyncio
import socket
import time

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError
from vidmesh.devstack.broker import (
    FAST_GROUP_JOIN,
    KAFKA_BOOTSTRAP_ENV,
    BrokerError,
    TansuBroker,
    create_topics,
    kafka_from_env_or_embedded,
)


def _tansu_children() -> set[int]:
    return {
        p.pid for p in psutil.Process().children(recursive=True) if p.name().startswith("tansu")
    }


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


async def test_broker_starts_answers_metadata_and_stops() -> None:
    broker = TansuBroker()
    bootstrap = broker.start()
    try:
        assert bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.running
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            assert await admin.list_topics() == []  # memory storage: every start is empty
        finally:
            await admin.close()
    finally:
        broker.stop()
    assert not broker.running
    assert not _port_open(int(bootstrap.rsplit(":", 1)[1]))
    broker.stop()  # idempotent


def test_a_taken_port_is_refused() -> None:
    with TansuBroker() as first, pytest.raises(BrokerError, match="already listens"):
        TansuBroker(port=first.port).start()


async def test_create_topics(kafka_bootstrap: str, unique_topic: str) -> None:
    name = unique_topic + "_three"
    await create_topics(kafka_bootstrap, [name], partitions=3)
    with pytest.raises(TopicAlreadyExistsError):
        await create_topics(kafka_bootstrap, [name], partitions=3)
    await create_topics(kafka_bootstrap, [name], partitions=3, exist_ok=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([name, unique_topic])}
    finally:
        await admin.close()
    assert len(described[name]["partitions"]) == 3
    assert len(described[unique_topic]["partitions"]) == 1  # the fixture's topic


async def test_a_produced_message_reaches_a_consumer_group(
    kafka_bootstrap: str, unique_topic: str, unique_group: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(unique_topic, b"hello", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP_JOIN,
    )
    started = time.monotonic()
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=15)
        joined_in = time.monotonic() - started
        assert (message.key, message.value) == (b"k", b"hello")
        await consumer.commit()
        partition = TopicPartition(message.topic, message.partition)
        assert await consumer.committed(partition) == message.offset + 1
    finally:
        await consumer.stop()
    # tansu holds a join ~session_timeout/2 in 1 s steps: about 1 s here, 5 s with defaults
    assert joined_in < 4.0


def test_env_var_points_at_an_external_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    with TansuBroker() as other:
        monkeypatch.setenv(KAFKA_BOOTSTRAP_ENV, other.bootstrap)
        before = _tansu_children()
        with kafka_from_env_or_embedded() as bootstrap:
            assert bootstrap == other.bootstrap
            assert _tansu_children() == before


def test_without_env_var_an_embedded_broker_runs_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KAFKA_BOOTSTRAP_ENV, raising=False)
    before = _tansu_children()
    with kafka_from_env_or_embedded() as bootstrap:
        started = _tansu_children() - before
        assert len(started) == 1
        assert bootstrap.startswith("127.0.0.1:")
    assert not any(psutil.pid_exists(pid) for pid in started)


def test_unique_names_differ(unique_group: str, request: pytest.FixtureRequest) -> None:
    from vidmesh.devstack.pytest_plugin import unique_name

    assert unique_group.startswith("group_test_unique_names_differ_")
    assert unique_name(request, "group") != unique_group
