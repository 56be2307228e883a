"""The inbox: the ids of the events a service has handled, so a redelivered event changes nothing.

A consumer claims the event id in the same transaction as the event's effects: the first claim
inserts the id and the effects commit with it; a later delivery finds the id and skips. Kafka
delivers at least once, so this makes the effects happen once. Each service adds the table to
its own metadata (``processed_events_table(Base.metadata)``) and migrates it like any other.

Ids are kept for a retention period and then purged (:func:`purge`); the retention must outlast
every way an event can come again: the topic's retention (a new consumer group reads from the
earliest record) plus the producer's outbox retention (a relay publishes again what a broker
lost), plus any consumer lag. An id purged earlier lets a late redelivery count twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import CTE, Column, DateTime, MetaData, String, Table, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

MAX_EVENT_ID_LENGTH: Final = 255
"""Longest event id the table stores; consumers should refuse longer ones as malformed."""


def processed_events_table(metadata: MetaData, name: str = "processed_events") -> Table:
    """The inbox table ``name(event_id PK, processed_at)`` in ``metadata`` (a service's Base)."""
    return Table(
        name,
        metadata,
        Column("event_id", String(MAX_EVENT_ID_LENGTH), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def claimed(table: Table, event_id: str) -> CTE:
    """The claim of ``event_id`` as a data-modifying CTE named ``claimed``: one row the first
    time, none after. A statement that selects its effects ``FROM claimed`` (and adds the CTE
    with ``add_cte``) claims and applies them at once: one round trip, atomic even outside a
    transaction, and a concurrent claim of the same id waits and then finds it taken."""
    return (
        insert(table)
        .values(event_id=event_id)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.event_id)
        .cte("claimed")
    )


async def claim(session: AsyncSession, table: Table, event_id: str) -> bool:
    """Record ``event_id`` in the session's transaction: True the first time, False when it was
    claimed before. A concurrent claim of the same id waits for the first one's transaction, then
    gets False if that committed, so the effects of one event never run twice."""
    statement = (
        insert(table)
        .values(event_id=event_id)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.event_id)
    )
    result = await session.execute(statement)
    return result.scalar_one_or_none() is not None


async def purge(session: AsyncSession, table: Table, *, before: datetime) -> int:
    """Delete the ids processed before ``before``; returns how many."""
    result = await session.execute(delete(table).where(table.c.processed_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
