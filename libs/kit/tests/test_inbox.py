"""The inbox: an event id is claimed once, in the caller's transaction, even under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, func, insert, select
from vidmesh.kit.db import Database
from vidmesh.kit.inbox import claim, processed_events_table, purge
from vidmesh.kit.models import service_metadata


@pytest.fixture
def inbox() -> Table:
    return processed_events_table(service_metadata())


@pytest.fixture
async def database(fresh_database: str, inbox: Table) -> AsyncIterator[Database]:
    database = Database(fresh_database)
    async with database.engine.begin() as connection:
        await connection.run_sync(inbox.metadata.create_all)
    try:
        yield database
    finally:
        await database.close()


def test_the_table_has_the_event_id_as_primary_key_and_a_default_time() -> None:
    table = processed_events_table(MetaData(), name="seen_events")
    assert table.name == "seen_events"
    assert [column.name for column in table.primary_key] == ["event_id"]
    assert table.c.processed_at.server_default is not None


async def test_the_first_claim_of_an_id_wins_and_a_second_one_does_not(
    database: Database, inbox: Table
) -> None:
    async with database.transaction() as session:
        assert await claim(session, inbox, "event-1") is True
    async with database.transaction() as session:
        assert await claim(session, inbox, "event-1") is False
        assert await claim(session, inbox, "event-2") is True


async def test_a_claim_rolled_back_with_its_transaction_can_be_made_again(
    database: Database, inbox: Table
) -> None:
    with pytest.raises(RuntimeError):
        await _claim_then_fail(database, inbox, "event-1")
    async with database.transaction() as session:
        assert await claim(session, inbox, "event-1") is True


async def test_concurrent_claims_of_one_id_give_exactly_one_winner(
    database: Database, inbox: Table
) -> None:
    async def claim_once() -> bool:
        async with database.transaction() as session:
            won = await claim(session, inbox, "event-1")
            await asyncio.sleep(0.05)  # hold the transaction open, so the others wait on it
            return won

    results = await asyncio.gather(*(claim_once() for _ in range(5)))

    assert sorted(results) == [False, False, False, False, True]
    async with database.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(inbox))).scalar() == 1


async def _claim_then_fail(database: Database, inbox: Table, event_id: str) -> None:
    async with database.transaction() as session:
        assert await claim(session, inbox, event_id) is True
        raise RuntimeError("the handler failed after claiming")


async def test_purge_deletes_the_ids_processed_before_the_cutoff_only(
    database: Database, inbox: Table
) -> None:
    now = datetime.now(UTC)
    rows = [
        {"event_id": "old", "processed_at": now - timedelta(days=20)},
        {"event_id": "recent", "processed_at": now - timedelta(days=1)},
    ]
    async with database.transaction() as session:
        await session.execute(insert(inbox), rows)
    async with database.transaction() as session:
        assert await purge(session, inbox, before=now - timedelta(days=15)) == 1
    async with database.transaction() as session:
        left = (await session.scalars(select(inbox.c.event_id))).all()
        assert left == ["recent"]
        assert await claim(session, inbox, "recent") is False
