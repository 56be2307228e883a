"""Nest's request-reply over Kafka.

A request goes to topic ``P`` with headers ``kafka_correlationId``, ``kafka_replyTopic``
(``P.reply``) and ``kafka_replyPartition``; each answer goes to that topic and partition with the
correlation id, ``kafka_nest-err`` for an error and ``kafka_nest-is-disposed`` on the last one.

The client side reads its reply partitions by manual assignment, outside any consumer group: no
rebalance can take them away in the middle of a call (Nest's request-reply breaks on rebalance,
nestjs/nest 6197 and 11264).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import zlib
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from vidmesh.transport.errors import (
    INTERNAL_ERROR_MESSAGE,
    NO_MESSAGE_HANDLER,
    RemoteError,
    RpcError,
)
from vidmesh.transport.kafka import headers as h
from vidmesh.transport.kafka.codec import decode_value, encode_value, header_text
from vidmesh.transport.kafka.consumer import stop_consumer
from vidmesh.transport.kafka.security import KafkaSecurity, client_kwargs

logger = structlog.get_logger("vidmesh.transport.kafka")

INTERNAL_ERROR = {"status": "error", "message": INTERNAL_ERROR_MESSAGE}
_DISPOSED = (h.NEST_IS_DISPOSED, b"\x00")


class Replier:
    """Sends the answers to one request."""

    def __init__(self, producer: AIOKafkaProducer, record: Any) -> None:
        self._producer = producer
        self.correlation_id = header_text(record.headers, h.CORRELATION_ID) or ""
        self.topic = header_text(record.headers, h.REPLY_TOPIC) or ""
        partition = header_text(record.headers, h.REPLY_PARTITION)
        self._partition = int(partition) if partition and partition.isdigit() else None

    async def _send(self, value: Any, extra: list[tuple[str, bytes]]) -> None:
        await self._producer.send_and_wait(
            self.topic,
            value=encode_value(value),
            # Keyed by correlation id (Nest ignores it): Kafka needs a key or a value, and an
            # error answer has no value.
            key=self.correlation_id.encode(),
            partition=self._partition,
            headers=[(h.CORRELATION_ID, self.correlation_id.encode()), *extra],
        )

    async def error(self, error: Any) -> None:
        await self._send(None, [(h.NEST_ERR, encode_value(error) or b"")])

    async def answer(self, result: Any) -> None:
        """Send a handler's result: one value, or each item of a stream (the last one disposed)."""
        if inspect.isawaitable(result):
            result = await result
        if not hasattr(result, "__aiter__"):
            await self._send(result, [_DISPOSED])
            return
        # Hold one item back so the last goes out with is-disposed, as Nest merges them; a
        # separate empty disposed message would reach a Nest client as an extra null item.
        held: list[Any] = []
        async for item in result:
            if held:
                await self._send(held.pop(), [])
            held.append(item)
        await self._send(held[0] if held else None, [_DISPOSED])


async def answer_request(replier: Replier, invoke: Any, context: Any) -> None:
    """Run the handler for a request and send its answer or its error."""
    if invoke is None:
        await replier.error(NO_MESSAGE_HANDLER)
        return
    try:
        await replier.answer(invoke(context))
    except RpcError as error:
        await replier.error(error.error)
    except Exception:
        logger.exception("handler_failed", route=context.route, transport="kafka")
        await replier.error(INTERNAL_ERROR)


class ReplyListener:
    """The client's side: reads its reply partitions and resolves the waiting calls."""

    def __init__(
        self,
        bootstrap: str,
        producer: AIOKafkaProducer,
        *,
        client_id: str,
        consumer_config: dict[str, Any] | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        self._producer = producer
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            enable_auto_commit=False,
            **{"fetch_max_wait_ms": 100, **(consumer_config or {})},
            **client_kwargs(security),
        )
        self._partition_key = zlib.crc32(f"{client_id}-{id(self)}".encode())
        self._partitions: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None
        self.calls: dict[str, asyncio.Future[Any]] = {}
        self._partial: dict[str, Any] = {}

    async def start(self) -> None:
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()  # a consumer that failed to start is still open
            raise

    async def partition_for(self, reply_topic: str) -> int:
        """Our partition of ``reply_topic``, read from its end before any request goes out."""
        partition = self._partitions.get(reply_topic)
        if partition is not None:
            return partition
        async with self._lock:
            if reply_topic not in self._partitions:
                await self._assign(reply_topic)
        return self._partitions[reply_topic]

    async def _assign(self, reply_topic: str) -> None:
        available = sorted(await self._producer.partitions_for(reply_topic))
        partition = available[self._partition_key % len(available)]
        chosen = TopicPartition(reply_topic, partition)
        # assign() replaces the whole assignment and forgets every position: the partitions read
        # so far would start again from their end and skip the answers not yet read (calls in
        # flight then time out). Put them back where they were; an answer read twice is ignored.
        reading = self._consumer.assignment()
        positions = {tp: await self._consumer.position(tp) for tp in reading}
        self._consumer.assign([*reading, chosen])
        for tp, offset in positions.items():
            self._consumer.seek(tp, offset)
        await self._consumer.seek_to_end(chosen)
        await self._consumer.position(chosen)
        self._partitions[reply_topic] = partition
        if self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read_forever())

    async def _read_forever(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=100)
            except KafkaError:
                # Keep reading once the broker is back; the calls waiting meanwhile time out.
                logger.exception("kafka_reply_fetch_failed")
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self._deliver(record)

    def _deliver(self, record: Any) -> None:
        correlation_id = header_text(record.headers, h.CORRELATION_ID)
        call = self.calls.get(correlation_id or "")
        if call is None or call.done():
            return
        error = header_text(record.headers, h.NEST_ERR)
        if error is not None:
            call.set_exception(RemoteError(decode_value(error.encode())))
        elif header_text(record.headers, h.NEST_IS_DISPOSED) is not None:
            value = decode_value(record.value)
            last = self._partial.pop(correlation_id or "", None)
            call.set_result(value if record.value is not None else last)
        else:
            self._partial[correlation_id or ""] = decode_value(record.value)

    def forget(self, correlation_id: str) -> None:
        self.calls.pop(correlation_id, None)
        self._partial.pop(correlation_id, None)

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        await stop_consumer(self._consumer)
