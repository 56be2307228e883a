"""Nest-style request-reply over the real broker: KafkaClient.send against a KafkaTransport.

One service (one group join) answers every test of this module, so the tests share the module's
event loop. Each request pattern is a topic of its own, with its ``.reply`` topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from vidmesh.devstack.broker import FAST_GROUP_JOIN
from vidmesh.devstack.pytest_plugin import unique_name
from vidmesh.transport import (
    Context,
    MessageContext,
    Microservice,
    RemoteError,
    RequestTimeout,
    Router,
    RpcError,
)
from vidmesh.transport.errors import NO_MESSAGE_HANDLER
from vidmesh.transport.kafka import KafkaClient, KafkaTransport, create_topics
from vidmesh.transport.kafka.reply import Replier, answer_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "Ünïcødé 视频 🎬"
FANOUT = 4
"""Extra request topics, each answered by the same handler (reply partitions joining late)."""


@dataclass
class Rpc:
    bootstrap: str
    client: KafkaClient
    echo: str
    sum: str
    missing_video: str
    countdown: str
    broken: str
    event_only: str
    unserved: str
    fanout: list[str]
    events: list[Any] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rpc(kafka_bootstrap: str, request: pytest.FixtureRequest) -> AsyncIterator[Rpc]:
    def name(prefix: str) -> str:
        return unique_name(request, prefix, max_len=120)

    rpc = Rpc(
        bootstrap=kafka_bootstrap,
        client=KafkaClient(kafka_bootstrap, client_id=name("client")),
        echo=name("echo"),
        sum=name("sum"),
        missing_video=name("missing"),
        countdown=name("countdown"),
        broken=name("broken"),
        event_only=name("event-only"),
        unserved=name("unserved"),
        fanout=[name(f"fanout{i}") for i in range(FANOUT)],
    )
    requests = [
        *(rpc.echo, rpc.sum, rpc.missing_video, rpc.countdown, rpc.broken, rpc.unserved),
        *(rpc.event_only, *rpc.fanout),
    ]
    topics = [*requests, *(f"{topic}.reply" for topic in requests)]
    await create_topics(kafka_bootstrap, topics, partitions=1)

    router = Router()

    @router.message(rpc.echo)
    async def echo(data: Any, context: Context) -> Any:
        assert context.transport == "kafka"
        assert context.id is not None  # a request, not an event
        return data

    @router.message(rpc.sum)
    def add(numbers: list[int]) -> int:
        return sum(numbers)

    @router.message(rpc.missing_video)
    async def missing(video_id: int) -> None:
        raise RpcError.status(404, f"Video {video_id} not found")

    @router.message(rpc.countdown)
    async def countdown(start: int) -> AsyncIterator[int]:
        for n in range(start, -1, -1):
            yield n

    @router.message(rpc.broken)
    async def broken(data: Any) -> None:
        raise ValueError("a bug, with details the caller must not see")

    @router.event(rpc.event_only)
    async def on_event(data: Any) -> None:
        rpc.events.append(data)

    for topic in rpc.fanout:
        router.message(topic)(add)

    service = Microservice(
        "kafka-rpc",
        router,
        transports=[
            KafkaTransport(
                kafka_bootstrap,
                group_id=name("group"),
                client_id=name("svc"),
                consumer_config=FAST_GROUP_JOIN,
            )
        ],
    )
    async with service, rpc.client:
        yield rpc


async def test_send_returns_the_handlers_answer(rpc: Rpc) -> None:
    # As with Nest, a number travels as its text.
    assert await rpc.client.send(rpc.sum, [1, 2, 39]) == "42"
    assert await rpc.client.send(rpc.echo, {"id": 7, "tags": ["a", "b"]}) == {
        "id": 7,
        "tags": ["a", "b"],
    }


async def test_a_non_ascii_payload_round_trips(rpc: Rpc) -> None:
    assert await rpc.client.send(rpc.echo, {"title": TITLE, TITLE: [TITLE]}) == {
        "title": TITLE,
        TITLE: [TITLE],
    }
    assert await rpc.client.send(rpc.echo, TITLE) == TITLE


async def test_an_rpc_error_reaches_the_caller_as_a_remote_error(rpc: Rpc) -> None:
    with pytest.raises(RemoteError) as raised:
        await rpc.client.send(rpc.missing_video, 9)
    assert raised.value.error == {
        "statusCode": 404,
        "message": "Video 9 not found",
        "error": "Not Found",
    }
    assert raised.value.status_code == 404


async def test_a_payload_failing_validation_is_a_400_remote_error(rpc: Rpc) -> None:
    with pytest.raises(RemoteError) as raised:
        await rpc.client.send(rpc.sum, {"not": "a list"})
    assert raised.value.status_code == 400
    assert raised.value.error["error"] == "Bad Request"


async def test_an_unexpected_exception_is_an_internal_server_error_without_details(
    rpc: Rpc,
) -> None:
    with pytest.raises(RemoteError) as raised:
        await rpc.client.send(rpc.broken, {})
    assert raised.value.error == {"status": "error", "message": "Internal server error"}


async def test_a_streamed_answer_resolves_with_its_last_item(rpc: Rpc) -> None:
    assert await rpc.client.send(rpc.countdown, 3) == "0"


async def test_concurrent_requests_each_get_their_own_answer(rpc: Rpc) -> None:
    answers = await asyncio.gather(*(rpc.client.send(rpc.sum, [n, 1000]) for n in range(30)))
    assert answers == [str(n + 1000) for n in range(30)]


async def test_answers_in_flight_survive_the_client_reading_a_new_reply_topic(rpc: Rpc) -> None:
    # The client's reply consumer is manually assigned; assigning a new reply partition must
    # not move the ones it already reads (that would skip answers not read yet).
    async with KafkaClient(rpc.bootstrap, client_id="late-topics", request_timeout=5) as client:
        assert await client.send(rpc.sum, [0]) == "0"
        in_flight = [asyncio.create_task(client.send(rpc.sum, [n])) for n in range(60)]
        later: list[str] = []
        for index, topic in enumerate(rpc.fanout):
            await asyncio.sleep(0.005)
            later.append(await client.send(topic, [index]))
        assert await asyncio.gather(*in_flight) == [str(n) for n in range(60)]
        assert later == [str(n) for n in range(FANOUT)]


async def test_a_request_nobody_answers_raises_request_timeout(rpc: Rpc) -> None:
    # Like Nest, a request to a pattern served by an event handler runs that handler and is not
    # answered.
    with pytest.raises(RequestTimeout):
        await rpc.client.send(rpc.event_only, {"n": 1}, timeout=0.5)
    async with asyncio.timeout(5):  # it did arrive: it was handled, just never answered
        while True:
            if rpc.events == [{"n": 1}]:
                break
            await asyncio.sleep(0.01)


async def test_a_request_without_message_handler_gets_nests_no_message_handler_error(
    rpc: Rpc,
) -> None:
    # A KafkaTransport subscribes only to its router's patterns, so a request it takes always
    # has a handler; the answer for one without is checked with the transport's own answering
    # code (answer_request with no handler), playing the server's part here.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=rpc.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=rpc.bootstrap)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(rpc.unserved, 0)])
        call = asyncio.create_task(rpc.client.send(rpc.unserved, {"id": 1}, timeout=5))
        record = await asyncio.wait_for(consumer.getone(), 5)
        context = MessageContext(pattern=rpc.unserved, route=rpc.unserved, data=record.value)
        await answer_request(Replier(producer, record), None, context)
        with pytest.raises(RemoteError) as raised:
            await call
    finally:
        await consumer.stop()
        await producer.stop()
    assert raised.value.error == NO_MESSAGE_HANDLER
    assert raised.value.error == (
        "There is no matching message handler defined in the remote service."
    )
