"""The unit of work: commit at the end of the block, roll back on an exception."""

from __future__ import annotations

import pytest
from sqlalchemy import text
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


async def test_ping_is_false_when_the_server_is_gone() -> None:
    database = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert await database.ping() is False
    finally:
        await database.close()


async def _insert_then_fail(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(text("INSERT INTO kept VALUES (1)"))
        raise RuntimeError("handler failed")
