"""The video migrations: up, down, idempotent, and in step with the models."""

from __future__ import annotations

import asyncpg
from vidmesh.kit.migrations import downgrade_async, model_differences, upgrade_async

from vidmesh_video.models import Base

PACKAGE = "vidmesh_video"


async def tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


async def revision(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await connection.close()


async def test_upgrade_to_head_creates_the_video_tables(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)

    assert await tables(fresh_database) == {
        "alembic_version",
        "videos",
        "uploads",
        "video_chunks",
        "outbox",
    }


async def test_the_migrated_schema_matches_the_models(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)

    assert await model_differences(fresh_database, Base.metadata) == []


async def test_upgrading_twice_changes_nothing(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)
    head = await revision(fresh_database)

    await upgrade_async(PACKAGE, fresh_database)

    assert await revision(fresh_database) == head
    assert await model_differences(fresh_database, Base.metadata) == []


async def test_downgrade_to_base_removes_every_table(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)

    await downgrade_async(PACKAGE, fresh_database)

    assert await tables(fresh_database) == {"alembic_version"}


async def test_chunk_bytes_are_stored_uncompressed(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)

    connection = await asyncpg.connect(fresh_database)
    try:
        storage = await connection.fetchval(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'video_chunks'::regclass AND attname = 'data'"
        )
    finally:
        await connection.close()
    assert storage == b"e"  # EXTERNAL: out of line, never compressed
