"""The transactional outbox: an event is a row written in the business transaction, so it
exists exactly when the change it reports was committed; :class:`vidmesh.kit.relay.OutboxRelay`
publishes the rows to Kafka afterwards.

A service declares ``class Outbox(OutboxMixin, Base)`` and calls :func:`add_event` inside its
transaction. The other functions are the relay's queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pydantic
from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from vidmesh.transport.kafka.codec import encode_value

TopicPartition = tuple[str, int]
"""(topic, partition)."""


class OutboxMixin:
    """The outbox table's columns: ``id`` is the publish order; ``published_at`` stays null until
    the broker acknowledged the record, whose partition and offset are then kept (to notice a
    broker that lost them)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249))
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kafka_partition: Mapped[int | None] = mapped_column()
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__
        return (
            # The relay's hot query; published rows drop out of this index.
            Index(f"ix_{name}_unpublished", "id", postgresql_where=text("published_at IS NULL")),
            Index(f"ix_{name}_partition", "topic", "kafka_partition", "published_at"),
        )


OutboxTable = type[OutboxMixin]


@dataclass(frozen=True, slots=True)
class PendingEvent:
    id: int
    topic: str
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Published:
    id: int
    partition: int
    offset: int


async def add_event(
    session: AsyncSession,
    table: OutboxTable,
    topic: str,
    key: str | bytes | None,
    value: pydantic.BaseModel | bytes | str | dict[str, Any] | None,
) -> None:
    """Write one event in the session's transaction; a model is sent as its wire JSON."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    # Into the Table, not the mapped class: a Core insert skips the ORM's bulk-insert machinery,
    # most of the cost of this one-row statement on a download's path.
    await session.execute(
        sql_insert(cast(Table, inspect(table).local_table)).values(
            topic=topic, key=encode_value(key), value=encode_value(value)
        )
    )


async def claim_batch(session: AsyncSession, table: OutboxTable, limit: int) -> list[PendingEvent]:
    """Lock up to ``limit`` unpublished rows in id order; rows another relay holds are skipped."""
    statement = (
        select(table.id, table.topic, table.key, table.value)
        .where(table.published_at.is_(None))
        .order_by(table.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(statement)).all()
    return [PendingEvent(row.id, row.topic, row.key, row.value) for row in rows]


async def mark_published(
    session: AsyncSession, table: OutboxTable, published: Sequence[Published]
) -> None:
    if not published:
        return
    now = await session.scalar(select(func.now()))
    await session.execute(
        sql_update(table),
        [
            {
                "id": p.id,
                "published_at": now,
                "kafka_partition": p.partition,
                "kafka_offset": p.offset,
            }
            for p in published
        ],
    )


async def mark_unpublished(
    session: AsyncSession,
    table: OutboxTable,
    partition: TopicPartition,
    *,
    keep: Iterable[int] = (),
) -> int:
    """Queue the retained rows published to ``partition`` again (all but the ids in ``keep``);
    returns how many."""
    topic, number = partition
    statement = (
        sql_update(table)
        .where(
            table.topic == topic,
            table.kafka_partition == number,
            table.published_at.is_not(None),
            table.id.not_in(list(keep)),
        )
        .values(published_at=None, kafka_partition=None, kafka_offset=None)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def newest_batch_starts(
    session: AsyncSession, table: OutboxTable
) -> dict[TopicPartition, int]:
    """Per partition, the lowest offset among the rows published last (one relay batch shares
    one ``published_at``): an offset the broker certainly held."""
    statement = (
        select(table.topic, table.kafka_partition, table.kafka_offset)
        .where(table.published_at.is_not(None))
        .order_by(table.topic, table.kafka_partition, table.published_at.desc(), table.kafka_offset)
        .ext(distinct_on(table.topic, table.kafka_partition))
    )
    rows = (await session.execute(statement)).all()
    return {
        (topic, partition): offset
        for topic, partition, offset in rows
        if partition is not None and offset is not None
    }


async def purge_published(
    session: AsyncSession, table: OutboxTable, *, before: datetime, limit: int = 10_000
) -> int:
    """Delete up to ``limit`` rows published before ``before``, oldest first; returns how many."""
    # Old rows have the lowest ids, so walking the primary key finds them without an index.
    oldest = (
        select(table.id)
        .where(table.published_at < before)
        .order_by(table.id)
        .limit(limit)
        .scalar_subquery()
    )
    statement = sql_delete(table).where(table.id.in_(oldest))
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
