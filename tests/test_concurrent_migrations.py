"""Replicas that start together migrate one at a time: a migration waits for the advisory lock
another one holds, then finds the schema as that one left it."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
from vidmesh.kit.migrations import MIGRATION_LOCK


async def _start_migration(url: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "VIDMESH_USER_DATABASE_URL": url, "VIDMESH_USER_TLS_ENABLED": "false"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vidmesh_user",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _has_version_table(connection: asyncpg.Connection) -> bool:
    found = await connection.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    return bool(found)


async def test_a_migration_waits_while_another_replica_holds_the_lock(fresh_database: str) -> None:
    holder = await asyncpg.connect(fresh_database)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        migration = await _start_migration(fresh_database)
        await asyncio.sleep(4.0)  # ample time for the process to start and migrate, were it free
        assert migration.returncode is None, "the migration did not wait for the lock"
        assert not await _has_version_table(holder)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        _, errors = await asyncio.wait_for(migration.communicate(), 60)
        assert migration.returncode == 0, errors.decode()[-1000:]
        assert await _has_version_table(holder)
    finally:
        await holder.close()
