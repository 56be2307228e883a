"""KafkaClient: emit events (topic = pattern) and make Nest-style requests over Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer
from vidmesh.transport.errors import RequestTimeout
from vidmesh.transport.kafka import headers as h
from vidmesh.transport.kafka.codec import encode_headers, encode_value
from vidmesh.transport.kafka.reply import ReplyListener
from vidmesh.transport.kafka.security import KafkaSecurity, client_kwargs
from vidmesh.transport.patterns import Pattern, route_of


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@contextlib.asynccontextmanager
async def _deadline(seconds: float, topic: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise RequestTimeout(f"no answer on {topic}.reply in {seconds}s") from None


class KafkaClient:
    """Like Nest's ``ClientKafka``: ``emit`` publishes an event, ``send`` waits for the answer."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "vidmesh",
        request_timeout: float = 30.0,
        consumer_config: dict[str, Any] | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self._consumer_config = consumer_config
        self.client_id = client_id
        self.request_timeout = request_timeout
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=f"{client_id}-client",
            acks="all",
            **client_kwargs(security),
        )
        self._replies: ReplyListener | None = None
        self._opening = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a producer that failed to start is still open
            raise

    async def emit(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        key: str | bytes | None = None,
        headers: dict[str, Any] | None = None,
        partition: int | None = None,
    ) -> None:
        """Publish an event to topic ``pattern``; returns once the broker acknowledged it."""
        await self._producer.send_and_wait(
            route_of(pattern),
            value=encode_value(data),
            key=encode_value(key),
            partition=partition,
            headers=encode_headers(headers),
        )

    async def send(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        timeout: float | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Any:
        """Send a request to topic ``pattern`` and return the answer from ``pattern.reply``."""
        topic = route_of(pattern)
        reply_topic = h.reply_topic_of(topic)
        replies = await self._reply_listener()
        partition = await replies.partition_for(reply_topic)
        correlation_id = uuid.uuid4().hex
        call = replies.calls[correlation_id] = _new_future()
        request_headers = [
            *encode_headers(headers),
            (h.CORRELATION_ID, correlation_id.encode()),
            (h.REPLY_TOPIC, reply_topic.encode()),
            (h.REPLY_PARTITION, str(partition).encode()),
        ]
        limit = self.request_timeout if timeout is None else timeout
        try:
            await self._producer.send_and_wait(
                topic, value=encode_value(data), headers=request_headers
            )
            async with _deadline(limit, topic):
                return await call
        finally:
            replies.forget(correlation_id)

    async def _reply_listener(self) -> ReplyListener:
        if self._replies is not None:
            return self._replies
        async with self._opening:  # concurrent first calls must share one listener
            if self._replies is None:
                replies = ReplyListener(
                    self.bootstrap,
                    self._producer,
                    client_id=self.client_id,
                    consumer_config=self._consumer_config,
                    security=self.security,
                )
                await replies.start()
                self._replies = replies
        return self._replies

    async def stop(self) -> None:
        if self._replies is not None:
            await self._replies.stop()
            self._replies = None
        await self._producer.stop()

    async def __aenter__(self) -> KafkaClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
