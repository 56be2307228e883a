"""The video migrations: up, down, idempotent, in step with the models, and the move of the
bytes stored in PostgreSQL before the object store into it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable
from typing import cast

import asyncpg
import httpx
import pytest
from vidmesh.contracts import video as contract
from vidmesh.kit.migrations import downgrade_async, model_differences, upgrade_async
from vidmesh.transport import TcpClient, TcpServer

from vidmesh_video.main import build_service
from vidmesh_video.models import Base
from vidmesh_video.objectstore import ObjectStore, key_of
from vidmesh_video.settings import Settings
from vidmesh_video.upgrade import ChunksCorrupt, migrate

PACKAGE = "vidmesh_video"
OLD_CHUNK = 256 * 1024


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


async def test_dropping_the_chunks_refuses_while_a_video_still_has_some(
    fresh_database: str,
) -> None:
    await upgrade_async(PACKAGE, fresh_database, "0002")
    await add_chunked_video(fresh_database, b"\x00\x00\x00\x18ftypisom" + b"x" * 100)

    with pytest.raises(RuntimeError, match="still have their bytes"):
        await upgrade_async(PACKAGE, fresh_database)

    assert "video_chunks" in await tables(fresh_database)


async def add_chunked_video(url: str, data: bytes, *, etag: str | None = None) -> uuid.UUID:
    """A video as the code before the object store wrote it: a row, and its bytes in chunks
    of 256 KiB, its etag their SHA-256."""
    video_id = uuid.uuid4()
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO videos (id, title, mimetype, size, user_id, filename, etag)"
                " VALUES ($1, 'old video', 'video/mp4', $2, 'u1', 'old.mp4', $3)",
                video_id,
                len(data),
                etag or hashlib.sha256(data).hexdigest(),
            )
            await connection.executemany(
                "INSERT INTO video_chunks (video_id, seq, data) VALUES ($1, $2, $3)",
                [
                    (video_id, seq, data[offset : offset + OLD_CHUNK])
                    for seq, offset in enumerate(range(0, len(data), OLD_CHUNK))
                ],
            )
    finally:
        await connection.close()
    return video_id


async def test_migrate_moves_every_chunked_video_into_the_store_then_drops_the_chunks(
    fresh_database: str, make_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    await upgrade_async(PACKAGE, fresh_database, "0001")  # the schema before this change
    small = b"\x00\x00\x00\x18ftypisom" + os.urandom(300_000)
    large = b"\x00\x00\x00\x18ftypisom" + os.urandom(5 * 1024 * 1024 + 777)  # two parts
    old = {await add_chunked_video(fresh_database, data): data for data in (small, large)}
    settings = make_settings(
        fresh_database, s3_bucket=f"moved-{uuid.uuid4().hex[:12]}", s3_part_size=5 * 1024 * 1024
    )

    await asyncio.to_thread(migrate, settings)
    await asyncio.to_thread(migrate, settings)  # again: nothing left to do, nothing changes

    assert "video_chunks" not in await tables(fresh_database)
    assert await model_differences(fresh_database, Base.metadata) == []
    async with ObjectStore(settings) as store:
        for video_id, data in old.items():
            assert await store.get(key_of(video_id)) == data
    async with build_service(settings.model_copy(update={"port": 0})) as service:
        port = cast(TcpServer, service.transports[0]).port
        async with TcpClient("127.0.0.1", port) as client:
            for video_id, data in old.items():
                grant = await client.send(contract.GRANT_READ, {"id": str(video_id)})
                assert grant["video"]["etag"] == hashlib.sha256(data).hexdigest()
                assert (await http.get(grant["url"])).content == data


async def test_migrate_keeps_chunks_that_do_not_match_their_sha256_and_resumes_after(
    fresh_database: str, make_settings: Callable[..., Settings]
) -> None:
    await upgrade_async(PACKAGE, fresh_database, "0001")
    data = b"\x00\x00\x00\x18ftypisom" + os.urandom(1000)
    video_id = await add_chunked_video(fresh_database, data, etag="0" * 64)
    settings = make_settings(fresh_database)

    with pytest.raises(ChunksCorrupt):
        await asyncio.to_thread(migrate, settings)

    assert "video_chunks" in await tables(fresh_database)  # nothing dropped, nothing lost
    connection = await asyncpg.connect(fresh_database)
    try:
        await connection.execute(
            "UPDATE videos SET etag = $1 WHERE id = $2", hashlib.sha256(data).hexdigest(), video_id
        )
    finally:
        await connection.close()
    await asyncio.to_thread(migrate, settings)
    assert "video_chunks" not in await tables(fresh_database)
