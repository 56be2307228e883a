"""KafkaTransport and KafkaClient on the real broker: events, retries, dead letters, hybrid.

Every test makes its own topics and consumer group (fixture ``kafka``, in conftest.py); services
join with FAST_GROUP_JOIN (about 1 s a join on tansu) and retry 3 times, 10 ms apart.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import pydantic
import pytest
from aiokafka.errors import KafkaConnectionError
from vidmesh.transport import (
    Context,
    MessageContext,
    Microservice,
    Router,
    ServiceState,
    TcpClient,
    TcpServer,
)
from vidmesh.transport.kafka import KafkaClient, KafkaTransport
from vidmesh.transport.kafka import headers as h
from vidmesh.transport.kafka.codec import header_text

TITLE = "Ünïcødé 视频 🎬"


def nothing_listens() -> str:
    """``127.0.0.1:PORT`` with nothing listening on PORT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


class Upload(pydantic.BaseModel):
    video_id: int
    title: str


async def test_an_emitted_event_reaches_its_handler_with_key_and_headers_in_context(
    kafka: Any,
) -> None:
    topic = await kafka.topic("evt")
    seen: list[tuple[Any, MessageContext]] = []
    router = Router()

    @router.event(topic)
    async def on_event(data: dict[str, Any], context: Context) -> None:
        seen.append((data, context))

    await kafka.serve(router, kafka.group())
    client = await kafka.client()
    await client.emit(
        topic,
        {"title": TITLE, "tags": ["ä", "ß"]},
        key="vidéo-42",
        headers={"traceparent": "00-abc-01", "x-lang": "中文"},
    )
    await kafka.eventually(lambda: len(seen) == 1)

    data, context = seen[0]
    assert data == {"title": TITLE, "tags": ["ä", "ß"]}
    assert context.transport == "kafka"
    assert context.route == topic
    assert context.is_event
    assert context.headers == {"traceparent": "00-abc-01", "x-lang": "中文"}
    assert context.record.topic == topic
    assert (context.record.partition, context.record.offset) == (0, 0)
    assert context.record.key == "vidéo-42".encode()


async def test_a_handler_that_fails_then_succeeds_is_retried_and_its_message_not_lost(
    kafka: Any,
) -> None:
    topic = await kafka.topic("retry", dead_letter=True)
    attempts: list[str] = []
    handled: list[str] = []
    router = Router()

    @router.event(topic)
    async def flaky(data: str) -> None:
        attempts.append(data)
        if data == "first" and attempts.count("first") < 3:  # fails twice, then succeeds
            raise RuntimeError("database is restarting")
        handled.append(data)

    await kafka.serve(router, kafka.group())
    client = await kafka.client()
    await client.emit(topic, "first")
    await client.emit(topic, "second")
    await kafka.eventually(lambda: "second" in handled)

    assert attempts == ["first", "first", "first", "second"]
    assert handled == ["first", "second"]
    assert await kafka.end_offset(f"{topic}.dlq") == 0


async def test_a_handler_that_always_fails_sends_the_record_to_the_dead_letter_topic(
    kafka: Any,
) -> None:
    topic = await kafka.topic("dlq", dead_letter=True)
    group = kafka.group()
    attempts: list[str] = []
    handled: list[str] = []
    router = Router()

    @router.event(topic)
    async def picky(data: Any) -> None:
        attempts.append(str(data))
        if data == {"poison": True}:
            raise ValueError(f"cannot digest {TITLE}")
        handled.append(data)

    await kafka.serve(router, group)
    client = await kafka.client()
    await client.emit(topic, "before")
    await client.emit(topic, {"poison": True}, key="k-1", headers={"traceparent": "00-t-01"})
    await client.emit(topic, "after")  # same partition: it must not be stuck behind the poison

    await kafka.eventually(lambda: handled == ["before", "after"])
    assert attempts.count(str({"poison": True})) == 3

    (dead,) = await kafka.read(f"{topic}.dlq", 1)
    assert dead.value == b'{"poison":true}'
    assert dead.key == b"k-1"
    assert header_text(dead.headers, "traceparent") == "00-t-01"
    assert header_text(dead.headers, h.DLT_ORIGINAL_TOPIC) == topic
    assert header_text(dead.headers, h.DLT_ORIGINAL_PARTITION) == "0"
    assert header_text(dead.headers, h.DLT_ORIGINAL_OFFSET) == "1"
    assert header_text(dead.headers, h.DLT_EXCEPTION_FQCN) == "builtins.ValueError"
    assert header_text(dead.headers, h.DLT_EXCEPTION_MESSAGE) == f"cannot digest {TITLE}"
    assert header_text(dead.headers, h.DLT_ATTEMPTS) == "3"
    # All three are done with: the group's next offset is past them.
    await kafka.eventually_committed(group, topic, 3)


async def test_an_invalid_payload_goes_to_the_dead_letter_topic_at_once(kafka: Any) -> None:
    topic = await kafka.topic("invalid", dead_letter=True)
    uploads: list[Upload] = []
    router = Router()

    @router.event(topic)
    async def on_upload(upload: Upload) -> None:
        uploads.append(upload)

    await kafka.serve(router, kafka.group())
    client = await kafka.client()
    await client.emit(topic, {"video_id": "not a number", "title": TITLE})
    await client.emit(topic, {"video_id": 7, "title": TITLE})

    await kafka.eventually(lambda: len(uploads) == 1)
    assert uploads == [Upload(video_id=7, title=TITLE)]  # the invalid one never reached it
    (dead,) = await kafka.read(f"{topic}.dlq", 1)
    assert dead.value == f'{{"video_id":"not a number","title":"{TITLE}"}}'.encode()
    assert header_text(dead.headers, h.DLT_ATTEMPTS) == "1"
    assert header_text(dead.headers, h.DLT_EXCEPTION_FQCN) == (
        "vidmesh.transport.errors.PayloadValidationError"
    )
    assert "video_id" in (header_text(dead.headers, h.DLT_EXCEPTION_MESSAGE) or "")
    assert header_text(dead.headers, h.DLT_ORIGINAL_OFFSET) == "0"


async def test_a_hybrid_service_serves_one_router_over_tcp_and_kafka_at_once(kafka: Any) -> None:
    events_topic = await kafka.topic("hybrid-evt")
    sum_topic = await kafka.topic("hybrid-sum")
    seen: list[tuple[str, Any]] = []
    router = Router()

    @router.message(sum_topic)
    async def add(numbers: list[int], context: Context) -> int:
        seen.append((context.transport, numbers))
        return sum(numbers)

    @router.event(events_topic)
    async def on_event(data: Any, context: Context) -> None:
        seen.append((context.transport, data))

    @router.message({"cmd": "ping"})  # no topic name: served over TCP only
    def ping() -> str:
        return "pong"

    tcp = TcpServer("127.0.0.1", 0)
    service, transport = await kafka.serve(router, kafka.group(), also=[tcp])
    assert [t.name for t in service.transports] == ["tcp", "kafka"]
    assert transport.topics == sorted([events_topic, sum_topic])

    async with TcpClient("127.0.0.1", tcp.port) as tcp_client:
        assert await tcp_client.send(sum_topic, [1, 2, 3]) == 6
        assert await tcp_client.send({"cmd": "ping"}) == "pong"
    client = await kafka.client()
    await client.emit(events_topic, {"title": TITLE})
    await kafka.eventually(lambda: len(seen) == 2)

    assert seen == [("tcp", [1, 2, 3]), ("kafka", {"title": TITLE})]


def one_event_router() -> Router:
    router = Router()

    @router.event("never-consumed")
    def on_event(data: Any) -> None:
        pass

    return router


async def test_a_service_that_cannot_reach_the_broker_fails_to_start_leaving_nothing_open() -> None:
    service = Microservice(
        "no-broker",
        one_event_router(),
        transports=[KafkaTransport(nothing_listens(), group_id="no-broker")],
    )
    with pytest.raises(KafkaConnectionError):
        await service.start()
    assert service.state is ServiceState.STOPPED
    gc.collect()  # an unclosed aiokafka producer or consumer warns here: an error in this suite


async def test_a_transport_with_a_bad_consumer_setting_fails_to_start_leaving_nothing_open(
    kafka_bootstrap: str,
) -> None:
    transport = KafkaTransport(
        kafka_bootstrap, group_id="bad-setting", consumer_config={"no_such_setting": 1}
    )
    service = Microservice("bad-setting", one_event_router(), transports=[transport])
    with pytest.raises(TypeError, match="no_such_setting"):
        await service.start()
    assert service.state is ServiceState.STOPPED
    gc.collect()


async def test_a_client_that_cannot_reach_the_broker_fails_to_start_leaving_nothing_open() -> None:
    client = KafkaClient(nothing_listens())
    with pytest.raises(KafkaConnectionError):
        await client.start()
    gc.collect()


async def test_a_service_whose_broker_went_away_stops_cleanly_leaving_nothing_open(
    unique_group: str,
) -> None:
    from vidmesh.devstack.broker import FAST_GROUP_JOIN, TansuBroker

    with TansuBroker() as broker:
        transport = KafkaTransport(
            broker.bootstrap, group_id=unique_group, consumer_config=dict(FAST_GROUP_JOIN)
        )
        service = Microservice("orphaned", one_event_router(), transports=[transport])
        await service.start()
        await transport.wait_assigned()
        await asyncio.sleep(1.0)  # fetching
    await asyncio.sleep(2.0)  # the consumer's fetches now fail and wait out their backoff
    await service.stop()  # aiokafka re-raised its own fetches' cancellation from here
    assert service.state is ServiceState.STOPPED
    gc.collect()
