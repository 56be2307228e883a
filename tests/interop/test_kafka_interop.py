"""vidmesh's Kafka transport against real NestJS Kafka peers (Nest 11 on kafkajs 2.2.4).

Both directions of both kinds of traffic, through the in-memory tansu broker of the session:

- events: a Nest ``ClientKafka.emit`` reaches a vidmesh ``@router.event`` served by
  ``KafkaTransport``, and ``KafkaClient.emit`` reaches a Nest ``@EventPattern``;
- request-reply: ``KafkaClient.send`` gets the answers (and ``RpcException``\\s) of Nest
  ``@MessagePattern``\\s, and a Nest ``ClientKafka.send`` gets those (and ``RpcError``\\s) of a
  vidmesh ``@router.message``.

The Nest server (``nestpeer/kafka-server.js``) starts once for the module; each test that needs a
Nest client runs ``nestpeer/kafka-client.js`` (twice at once, in one consumer group, for the
reply-partition test). Every topic and consumer group is new to the run (``unique_name``), so
nothing left from another test or run can be read. kafkajs and aiokafka consumers use session
timeouts that make a group join take about 1 s on tansu.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from vidmesh.devstack.broker import FAST_GROUP_JOIN
from vidmesh.devstack.nest_kafka import (
    NestKafkaClientRun,
    NestKafkaServer,
    nest_kafka_server,
    run_nest_kafka_client,
    run_nest_kafka_clients,
)
from vidmesh.devstack.pytest_plugin import unique_name
from vidmesh.transport import Context, Microservice, RemoteError, Router, RpcError
from vidmesh.transport.kafka import KafkaClient, KafkaTransport, create_topics

pytestmark = pytest.mark.interop

REPLY_PARTITIONS = 4
"""Reply topics get several partitions, so that an answer must go where ``kafka_replyPartition``
says: a vidmesh client reads one partition of it, a Nest client those its group gave it."""

INTERNAL_ERROR = {"status": "error", "message": "Internal server error"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def topic_names(prefix: str, kinds: tuple[str, ...]) -> dict[str, str]:
    return {kind: f"{prefix}.{kind}" for kind in kinds}


async def create_request_topics(bootstrap: str, topics: dict[str, str], requests: set[str]) -> None:
    """One partition per topic (events keep their order), and a reply topic per request topic."""
    await create_topics(bootstrap, topics.values(), partitions=1)
    replies = [f"{topics[kind]}.reply" for kind in requests]
    await create_topics(bootstrap, replies, partitions=REPLY_PARTITIONS)


# -- a Nest Kafka microservice, for the whole module --------------------------------------------


@pytest.fixture(scope="module")
def nest_topics(request: pytest.FixtureRequest) -> dict[str, str]:
    """The topics (= patterns) the Nest server serves, new to this run."""
    kinds = ("event", "echo", "describe", "notFound", "crash")
    return topic_names(unique_name(request, "nest", max_len=200), kinds)


@pytest.fixture(scope="module")
def nest_kafka(
    nest_packages: Path,
    kafka_bootstrap: str,
    nest_topics: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[NestKafkaServer]:
    """A real Nest Kafka microservice, its consumer group joined."""
    requests = {"echo", "describe", "notFound", "crash"}
    asyncio.run(create_request_topics(kafka_bootstrap, nest_topics, requests))
    group = unique_name(request, "nest_server", max_len=200)
    with nest_kafka_server(kafka_bootstrap, nest_topics, group=group) as server:
        yield server


@pytest.fixture
async def kafka_client(kafka_bootstrap: str) -> AsyncIterator[KafkaClient]:
    async with KafkaClient(kafka_bootstrap, client_id="vidmesh-interop", request_timeout=15) as c:
        yield c


# -- vidmesh -> Nest ------------------------------------------------------------------------------


async def test_python_events_reach_a_nest_event_pattern(
    nest_kafka: NestKafkaServer, nest_topics: dict[str, str], kafka_client: KafkaClient
) -> None:
    topic = nest_topics["event"]
    video = {"videoId": 42, "title": "Été à Köln 🎬", "tags": ["a", "b"]}
    await kafka_client.emit(topic, video, key="video-42", headers={"traceparent": TRACEPARENT})
    await kafka_client.emit(topic, "plain text, ünïcödé ✓")
    await kafka_client.emit(topic, [1, "two", {"three": 3.5}])
    await kafka_client.emit(topic, 7)
    await kafka_client.emit(topic, True)
    await kafka_client.emit(topic, b"\x00\x01raw")

    events = await asyncio.to_thread(nest_kafka.take_events, 6)

    def seen(data: Any, *, key: Any = None, headers: Any = None) -> dict[str, Any]:
        return {"topic": topic, "partition": 0, "key": key, "headers": headers or {}, "data": data}

    assert events == [
        seen(video, key="video-42", headers={"traceparent": TRACEPARENT}),
        seen("plain text, ünïcödé ✓"),
        seen([1, "two", {"three": 3.5}]),
        # Nest's KafkaParser parses only what starts with { or [: a lone number or boolean
        # arrives as its text, as it does between two Nest peers.
        seen("7"),
        seen("true"),
        # A leading zero byte (a schema-registry payload) stays binary.
        seen({"buffer": b"\x00\x01raw".hex()}),
    ]


async def test_python_requests_get_the_answers_of_nest_message_patterns(
    nest_kafka: NestKafkaServer, nest_topics: dict[str, str], kafka_client: KafkaClient
) -> None:
    payload = {"title": "Ça tourne 🎬", "chapters": [{"at": 0, "name": "début"}], "hd": True}
    assert await kafka_client.send(nest_topics["echo"], payload) == payload

    text = "Grüße aus 日本 🎬"
    assert await kafka_client.send(nest_topics["describe"], text) == {
        "text": text,
        "codePoints": len(text),
        "upper": "GRÜSSE AUS 日本 🎬",
    }

    # Concurrent calls on one client: each answer finds its call by kafka_correlationId.
    payloads = [{"n": n, "text": "é" * n} for n in range(8)]
    answers = await asyncio.gather(*(kafka_client.send(nest_topics["echo"], p) for p in payloads))
    assert answers == payloads


async def test_first_calls_to_several_nest_patterns_at_once(
    nest_kafka: NestKafkaServer, nest_topics: dict[str, str], kafka_client: KafkaClient
) -> None:
    assert await kafka_client.send(nest_topics["echo"], "warm") == "warm"
    # The reply topic of each new pattern joins the client's reading while the other calls are
    # in flight: none of their answers may be skipped.
    echoed, described, not_found, crashed = await asyncio.gather(
        kafka_client.send(nest_topics["echo"], ["è"]),
        kafka_client.send(nest_topics["describe"], "ü"),
        kafka_client.send(nest_topics["notFound"], "ß"),
        kafka_client.send(nest_topics["crash"], "x"),
        return_exceptions=True,
    )
    assert echoed == ["è"]
    assert described == {"text": "ü", "codePoints": 1, "upper": "Ü"}
    assert isinstance(not_found, RemoteError)
    assert not_found.error == {
        "statusCode": 404,
        "message": "thing ß not found",
        "error": "Not Found",
    }
    assert isinstance(crashed, RemoteError)
    assert crashed.error == INTERNAL_ERROR


async def test_nest_answers_on_the_reply_partition_each_python_client_reads(
    nest_kafka: NestKafkaServer, nest_topics: dict[str, str], kafka_bootstrap: str
) -> None:
    # Each client reads one partition of the reply topic, picked at random among the
    # REPLY_PARTITIONS: with several clients, an answer sent anywhere but to the partition named
    # by kafka_replyPartition would be lost (and the call time out).
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                KafkaClient(kafka_bootstrap, client_id=f"vidmesh-interop-{n}", request_timeout=15)
            )
            for n in range(6)
        ]
        answers = await asyncio.gather(
            *(client.send(nest_topics["echo"], {"client": n}) for n, client in enumerate(clients))
        )
    assert answers == [{"client": n} for n in range(len(clients))]


async def test_nest_rpc_exceptions_reach_python_as_remote_errors(
    nest_kafka: NestKafkaServer, nest_topics: dict[str, str], kafka_client: KafkaClient
) -> None:
    with pytest.raises(RemoteError) as raised:
        await kafka_client.send(nest_topics["notFound"], "vidéo 🎬")
    assert raised.value.error == {
        "statusCode": 404,
        "message": "thing vidéo 🎬 not found",
        "error": "Not Found",
    }
    assert raised.value.status_code == 404

    # A plain Error in a Nest handler: Nest answers its generic error, never the message.
    with pytest.raises(RemoteError) as raised:
        await kafka_client.send(nest_topics["crash"], {"boom": True})
    assert raised.value.error == INTERNAL_ERROR

    # The failed calls left the client working.
    assert await kafka_client.send(nest_topics["echo"], "encore") == "encore"


# -- Nest -> vidmesh ------------------------------------------------------------------------------


class Upload(BaseModel):
    title: str
    seconds: int


@dataclass
class PythonKafkaService:
    """A vidmesh Microservice on KafkaTransport, and what its event handlers received."""

    bootstrap: str
    topics: dict[str, str]
    nest_group: str
    events: asyncio.Queue[tuple[str, Any, bytes | None, dict[str, Any]]] = field(
        default_factory=asyncio.Queue
    )

    async def take_events(self, count: int, timeout: float = 15.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            return [await self.events.get() for _ in range(count)]

    async def nest(self, *calls: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ``calls`` with a Nest ClientKafka against this service."""
        return await run_nest_kafka_client(self.bootstrap, calls, group=self.nest_group)

    async def nest_group_of(self, *scenarios: list[dict[str, Any]]) -> list[NestKafkaClientRun]:
        """Run each scenario with its own Nest ClientKafka, all in one consumer group, once the
        group has shared out the reply partitions."""
        return await run_nest_kafka_clients(
            self.bootstrap,
            scenarios,
            group=self.nest_group,
            reply_partitions_at_most=REPLY_PARTITIONS // len(scenarios),
        )


def build_router(service: PythonKafkaService) -> Router:
    topics = service.topics
    router = Router()

    @router.event(topics["event"])
    async def record(data: Any, context: Context) -> None:
        record = context.record
        await service.events.put((context.route, data, record.key, context.headers))

    @router.event(topics["count"])
    async def count(n: int, context: Context) -> None:
        await service.events.put((context.route, n, None, {}))

    @router.message(topics["echo"])
    async def echo(data: Any) -> Any:
        return data

    @router.message(topics["describe"])
    async def describe(text: str) -> dict[str, Any]:
        return {"text": text, "codePoints": len(text), "upper": text.upper()}

    @router.message(topics["upload"])
    async def upload(video: Upload) -> dict[str, Any]:
        return {"title": video.title, "minutes": video.seconds / 60}

    @router.message(topics["countdown"])
    async def countdown(start: int) -> AsyncIterator[dict[str, int]]:
        for n in range(start, 0, -1):
            yield {"left": n}

    @router.message(topics["notFound"])
    async def not_found(thing: str) -> None:
        raise RpcError.status(404, f"vidéo {thing} introuvable")

    @router.message(topics["crash"])
    async def crash() -> None:
        raise ValueError("kaboom")

    return router


@pytest.fixture
async def python_service(
    kafka_bootstrap: str, unique_group: str, request: pytest.FixtureRequest
) -> AsyncIterator[PythonKafkaService]:
    """vidmesh's KafkaTransport serving new topics in a new group (not waited for: it reads each
    topic from the beginning, so a Nest client may start sending while it joins)."""
    kinds = ("event", "count", "echo", "describe", "upload", "countdown", "notFound", "crash")
    topics = topic_names(unique_name(request, "py", max_len=200), kinds)
    await create_request_topics(kafka_bootstrap, topics, set(kinds) - {"event", "count"})
    service = PythonKafkaService(
        kafka_bootstrap, topics, nest_group=unique_name(request, "nest_client", max_len=200)
    )
    transport = KafkaTransport(
        kafka_bootstrap,
        group_id=unique_group,
        client_id="vidmesh-interop",
        consumer_config=FAST_GROUP_JOIN,
    )
    app = Microservice("interop", build_router(service), transports=[transport])
    await app.start()
    try:
        yield service
    finally:
        await app.stop()


def emit(pattern: str, data: Any) -> dict[str, Any]:
    return {"kind": "emit", "pattern": pattern, "data": data}


def send(pattern: str, data: Any) -> dict[str, Any]:
    return {"kind": "send", "pattern": pattern, "data": data}


def stream(pattern: str, data: Any) -> dict[str, Any]:
    return {"kind": "stream", "pattern": pattern, "data": data}


async def test_nest_events_reach_a_python_event_handler(python_service: PythonKafkaService) -> None:
    topics = python_service.topics
    video = {"videoId": 7, "title": "Ça tourne 🎬"}
    results = await python_service.nest(
        emit(topics["event"], video),
        # Nest's Kafka message form: key, value and headers of the record.
        emit(
            topics["event"],
            {"key": "video-7", "value": {"videoId": 7}, "headers": {"traceparent": TRACEPARENT}},
        ),
        emit(topics["event"], "texte brut ✓"),
        emit(topics["count"], 5),
    )
    assert results == [{"ok": None}] * 4

    events = await python_service.take_events(4)
    in_order = [e for e in events if e[0] == topics["event"]]
    assert in_order == [
        (topics["event"], video, None, {}),
        (topics["event"], {"videoId": 7}, b"video-7", {"traceparent": TRACEPARENT}),
        (topics["event"], "texte brut ✓", None, {}),
    ]
    # Nest sends the number 5 as the text "5"; the handler declared int and gets 5.
    assert [e for e in events if e[0] == topics["count"]] == [(topics["count"], 5, None, {})]


async def test_nest_requests_get_the_answers_of_python_message_handlers(
    python_service: PythonKafkaService,
) -> None:
    topics = python_service.topics
    payload = {"title": "Ça tourne 🎬", "chapters": [{"at": 0, "name": "début"}], "hd": True}
    text = "Grüße aus 日本 🎬"
    results = await python_service.nest(
        send(topics["echo"], payload),
        send(topics["echo"], "ünïcödé ✓"),
        send(topics["describe"], text),
        send(topics["upload"], {"title": "Film", "seconds": 90}),
        # An async generator: every item reaches the Nest observable, then it completes.
        stream(topics["countdown"], 3),
    )
    assert results == [
        {"ok": payload},
        {"ok": "ünïcödé ✓"},
        {"ok": {"text": text, "codePoints": len(text), "upper": "GRÜSSE AUS 日本 🎬"}},
        {"ok": {"title": "Film", "minutes": 1.5}},
        {"ok": [{"left": 3}, {"left": 2}, {"left": 1}]},
    ]


async def test_python_rpc_errors_reach_the_nest_client(python_service: PythonKafkaService) -> None:
    topics = python_service.topics
    results = await python_service.nest(
        send(topics["notFound"], "🎬 42"),
        send(topics["crash"], {"boom": True}),
        send(topics["upload"], {"title": "Film", "seconds": "long"}),
        send(topics["echo"], "still answering"),
    )
    not_found, crash, invalid, after = results
    assert not_found == {
        "err": {"statusCode": 404, "message": "vidéo 🎬 42 introuvable", "error": "Not Found"}
    }
    assert crash == {"err": INTERNAL_ERROR}
    assert invalid["err"]["statusCode"] == 400
    assert invalid["err"]["error"] == "Bad Request"
    assert after == {"ok": "still answering"}


async def test_python_answers_reach_the_nest_client_that_asked(
    python_service: PythonKafkaService,
) -> None:
    # Two Nest clients in one group share the partitions of the reply topic. Each names its
    # lowest as kafka_replyPartition and reads only its own: an answer sent to any other
    # partition goes to the other client, which drops it, and the call times out.
    topics = python_service.topics
    scenarios = [
        [send(topics["echo"], {"client": c, "call": n}) for n in range(4)] for c in range(2)
    ]
    first, second = await python_service.nest_group_of(*scenarios)

    reply_topic = f"{topics['echo']}.reply"
    first_reads = set(first.reply_partitions[reply_topic])
    second_reads = set(second.reply_partitions[reply_topic])
    assert first_reads
    assert second_reads
    assert first_reads.isdisjoint(second_reads)
    assert first.results == [{"ok": {"client": 0, "call": n}} for n in range(4)]
    assert second.results == [{"ok": {"client": 1, "call": n}} for n in range(4)]
