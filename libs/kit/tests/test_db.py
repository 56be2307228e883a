"""The unit of work: commit at the end of the block, roll back on an exception."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from vidmesh.kit import db
from vidmesh.kit.db import Database, async_url


def test_async_url_switches_plain_postgres_urls_to_asyncpg() -> None:
    assert async_url("postgresql://u:p%40ss@h:5/d") == "postgresql+asyncpg://u:p%40ss@h:5/d"


async def test_transaction_commits_when_the_block_ends(fresh_database: str) -> None:
    database = Database(fresh_database)
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE kept (n int)"))
            await session.execute(text("INSERT INTO kept VALUES (1)"))
        async with database.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM kept"))).scalar() == 1
    finally:
        await database.close()


async def test_transaction_rolls_back_on_an_exception(fresh_database: str) -> None:
    database = Database(fresh_database)
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE kept (n int)"))
        with pytest.raises(RuntimeError):
            await _insert_then_fail(database)
        async with database.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM kept"))).scalar() == 0
    finally:
        await database.close()


async def test_autocommit_commits_each_statement_on_its_own(fresh_database: str) -> None:
    database = Database(fresh_database)
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE kept (n int)"))
        with pytest.raises(RuntimeError):
            await _insert_then_fail(database, autocommit=True)
        async with database.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM kept"))).scalar() == 1
    finally:
        await database.close()


async def test_ping_is_false_when_the_server_is_gone() -> None:
    database = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert await database.ping() is False
    finally:
        await database.close()


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    fresh_database: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle
    database = Database(fresh_database)
    try:
        first = await _backend_pid(database)
        admin = await asyncpg.connect(postgres_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        assert await _backend_pid(database) != first
    finally:
        await database.close()


async def _backend_pid(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _insert_then_fail(database: Database, *, autocommit: bool = False) -> None:
    async with database.autocommit() if autocommit else database.transaction() as session:
        await session.execute(text("INSERT INTO kept VALUES (1)"))
        raise RuntimeError("handler failed")
