"""Bounded retries with backoff, then the dead-letter topic ``<topic>.dlq``.

A failing handler is retried ``max_attempts`` times in all, waiting ``initial_backoff`` seconds,
then each time ``multiplier`` times longer (at most ``max_backoff``), and for no longer than
``max_elapsed`` seconds from its first try, when set. After that, or at once for a
payload that fails validation (retrying cannot fix it), the record goes to ``<topic>.dlq`` with
its key, value and headers, plus headers naming the original topic, partition, offset and error;
then the partition moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from vidmesh.transport.kafka import headers as h


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    max_elapsed: float | None = None
    """Seconds from the first try after which no new try starts; None: attempts only."""

    def gives_up(self, attempts: int, elapsed: float) -> bool:
        """Whether a record that failed ``attempts`` times, the first try ``elapsed`` seconds
        ago, goes to the dead-letter topic now."""
        if attempts >= self.max_attempts:
            return True
        return self.max_elapsed is not None and elapsed >= self.max_elapsed

    def pause(self, attempts: int, elapsed: float) -> float:
        """Seconds to wait before the next try: the backoff, cut to what is left of
        ``max_elapsed`` (so the last try comes at the deadline, not a backoff past it)."""
        delay = self.backoff(attempts)
        if self.max_elapsed is None:
            return delay
        return max(0.0, min(delay, self.max_elapsed - elapsed))

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure."""
        try:
            delay = self.initial_backoff * self.multiplier ** (failed_attempts - 1)
        except OverflowError:  # a float power past ~1e308, with a very large max_attempts
            return float(self.max_backoff)
        return float(min(delay, self.max_backoff))


class Producer(Protocol):
    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


async def send_to_dead_letter(
    producer: Producer, record: Any, error: BaseException, *, attempts: int
) -> None:
    """Publish ``record`` (an aiokafka ConsumerRecord) to its dead-letter topic; waits for the
    broker's acknowledgement, so the caller may commit the record's offset afterwards."""
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("kafka_dlt-")]
    extra = [
        (h.DLT_ORIGINAL_TOPIC, record.topic.encode()),
        (h.DLT_ORIGINAL_PARTITION, str(record.partition).encode()),
        (h.DLT_ORIGINAL_OFFSET, str(record.offset).encode()),
        (h.DLT_EXCEPTION_FQCN, f"{type(error).__module__}.{type(error).__qualname__}".encode()),
        (h.DLT_EXCEPTION_MESSAGE, str(error)[:4000].encode()),
        (h.DLT_ATTEMPTS, str(attempts).encode()),
    ]
    await producer.send_and_wait(
        h.dead_letter_topic_of(record.topic),
        value=record.value,
        key=record.key,
        headers=original + extra,
    )
