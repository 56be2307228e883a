"""KafkaTransport: serves a RouteTable from a consumer group, beside TCP in one Microservice.

Each record of topic ``P`` goes to the handlers of pattern ``P``: event handlers with bounded
retries and a dead-letter topic, or, for a record carrying Nest's request headers, the message
handler, whose answers go to the reply topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from vidmesh.transport.context import MessageContext, reset_current_context, set_current_context
from vidmesh.transport.errors import PayloadValidationError
from vidmesh.transport.kafka import headers as h
from vidmesh.transport.kafka.codec import decode_headers, decode_value, header_text
from vidmesh.transport.kafka.consumer import ConsumerLoop, Stopping, stop_consumer
from vidmesh.transport.kafka.reply import Replier, answer_request
from vidmesh.transport.kafka.retry import RetryPolicy, send_to_dead_letter
from vidmesh.transport.kafka.security import KafkaSecurity, client_kwargs
from vidmesh.transport.routing import Invoke, Router, RouteTable

logger = structlog.get_logger("vidmesh.transport.kafka")

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")

CONSUMER_DEFAULTS: dict[str, Any] = {
    # A new group reads what was produced before it first joined: no event is missed.
    "auto_offset_reset": "earliest",
    # Kafka answers a fetch as soon as data arrives; tansu looks, then sleeps half the time left
    # and looks again, so a record waits about a quarter of fetch_max_wait_ms (aiokafka's 500 ms
    # made a request-reply take 250 ms). 100 ms bounds that (p50 ~25 ms on tansu) and costs an
    # idle consumer 10 fetches a second; pass 10 in consumer_config for ~4 ms on tansu.
    "fetch_max_wait_ms": 100,
}


class KafkaTransport:
    """Consume the patterns of a router as topics, in consumer group ``group_id``."""

    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        *,
        group_id: str,
        client_id: str = "vidmesh",
        retry: RetryPolicy | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        max_buffered: int = 1000,
        drain_timeout: float = 30.0,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.group_id = group_id
        self.client_id = client_id
        self.retry = retry or RetryPolicy()
        self._consumer_config = dict(consumer_config or {})
        self._max_buffered = max_buffered
        self._drain_timeout = drain_timeout
        self._table = RouteTable(Router())
        self._producer: AIOKafkaProducer | None = None
        self._loop: ConsumerLoop | None = None
        self._stopping = asyncio.Event()

    @property
    def topics(self) -> list[str]:
        routes = set(self._table.events) | set(self._table.messages)
        return sorted(route for route in routes if _TOPIC_NAME.fullmatch(route))

    async def start(self, table: RouteTable) -> None:
        self._table = table
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-server",
            acks="all",
            **client_kwargs(self.security),
        )
        try:
            await self._producer.start()
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                client_id=f"{self.client_id}-server",
                enable_auto_commit=False,
                **{**CONSUMER_DEFAULTS, **self._consumer_config},
                **client_kwargs(self.security),
            )
            self._loop = ConsumerLoop(
                consumer,
                self._process,
                max_buffered=self._max_buffered,
                drain_timeout=self._drain_timeout,
            )
            await self._loop.start(self.topics)
        except BaseException:
            # A Microservice stops only the transports that started: close what opened here.
            await self.stop()
            raise
        logger.info("kafka_consuming", group=self.group_id, topics=self.topics)

    async def wait_assigned(self) -> None:
        """Wait until the group gave this consumer at least one partition."""
        assert self._loop is not None
        await self._loop.assigned.wait()

    async def drain(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._loop is not None:
            await self._loop.drain(timeout)

    async def stop(self) -> None:
        await self.drain()
        if self._loop is not None:
            await stop_consumer(self._loop.consumer)
            self._loop = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    # -- one record -----------------------------------------------------------------------------

    async def _process(self, record: Any) -> None:
        route = record.topic
        context = MessageContext(
            pattern=route,
            route=route,
            data=decode_value(record.value),
            headers=decode_headers(record.headers),
            transport="kafka",
            record=record,
        )
        token = set_current_context(context)
        try:
            await self._dispatch(record, context)
        finally:
            reset_current_context(token)

    async def _dispatch(self, record: Any, context: MessageContext) -> None:
        assert self._producer is not None
        events = self._table.events.get(context.route)
        is_request = header_text(record.headers, h.CORRELATION_ID) and header_text(
            record.headers, h.REPLY_TOPIC
        )
        if is_request and not events:
            context.id = header_text(record.headers, h.CORRELATION_ID)
            invoke = self._table.messages.get(context.route)
            await answer_request(Replier(self._producer, record), invoke, context)
            return
        handlers = events or _as_tuple(self._table.messages.get(context.route))
        if not handlers:
            logger.warning("no_event_handler", route=context.route, transport="kafka")
        for invoke in handlers:
            await self._handle_event(invoke, context, record)

    async def _handle_event(self, invoke: Invoke, context: MessageContext, record: Any) -> None:
        assert self._producer is not None
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            try:
                await _complete(invoke(context))
                return
            except PayloadValidationError as error:
                logger.warning("event_invalid", route=context.route, error=str(error))
                await send_to_dead_letter(self._producer, record, error, attempts=attempt)
                return
            except Exception as error:
                elapsed = time.monotonic() - started
                if self.retry.gives_up(attempt, elapsed):
                    # The record first: rendering a traceback can take a while.
                    await send_to_dead_letter(self._producer, record, error, attempts=attempt)
                    logger.exception("event_dead_lettered", route=context.route, attempts=attempt)
                    return
                logger.warning(
                    "event_retry", route=context.route, attempt=attempt, error=repr(error)
                )
                await self._pause(self.retry.pause(attempt, elapsed))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        if self._stopping.is_set():
            raise Stopping


def _as_tuple(invoke: Invoke | None) -> tuple[Invoke, ...]:
    return () if invoke is None else (invoke,)


async def _complete(result: Any) -> None:
    """Run a handler's result to its end: await it, or drain the stream it returned."""
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aiter__"):
        async for _ in result:
            pass
