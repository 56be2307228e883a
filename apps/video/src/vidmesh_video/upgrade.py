"""``python -m vidmesh_video migrate``: the schema, the bucket, and the bytes of videos stored
as PostgreSQL chunks (before the object store) moved into it.

In that order: the schema up to 0002 (chunks still there), the bucket made ready (created,
CORS, lifecycle), every video's chunks copied into the store and verified by SHA-256 against
what the chunks hold and the video's recorded SHA-256 before they are deleted (one video at a
time, so a run that stops half-way resumes where it was), then the rest of the schema (0003
drops the empty chunk table). Idempotent: run again, it changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Final

import structlog
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, Uuid, delete, select, text
from vidmesh.kit.db import Database
from vidmesh.kit.migrations import upgrade

from vidmesh_video.models import StoredVideo
from vidmesh_video.objectstore import ObjectStore, Part, key_of
from vidmesh_video.settings import Settings

logger = structlog.get_logger("vidmesh_video.upgrade")

PACKAGE: Final = "vidmesh_video"
BEFORE_DROP: Final = "0002"
"""The last revision with the chunk table."""
READ_BATCH: Final = 16
"""Chunks (256 KiB each) fetched per query while moving: 4 MiB in memory at most."""

_CHUNKS: Final = Table(
    "video_chunks",
    MetaData(),
    Column("video_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary),
)
"""The table as 0001 made it (no model: the schema at head no longer has it)."""


class ChunksCorrupt(RuntimeError):
    """A video's chunks do not hash to its recorded SHA-256: nothing is moved or deleted."""


def migrate(settings: Settings) -> None:
    url = settings.database_url.get_secret_value()
    if asyncio.run(_revision(url)) in (None, "0001"):
        upgrade(PACKAGE, url, BEFORE_DROP)
    asyncio.run(prepare_store(settings))
    upgrade(PACKAGE, url, "head")


async def prepare_store(settings: Settings) -> int:
    """The bucket ready and every chunked video moved; returns how many were moved."""
    database = Database(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with ObjectStore(settings) as store:
            await store.ensure_bucket(cors_origins=settings.s3_cors_origins)
            return await move_chunks(database, store, part_size=settings.s3_part_size)
    finally:
        await database.close()


async def move_chunks(database: Database, store: ObjectStore, *, part_size: int) -> int:
    """Copy each chunked video into the store, verify it, then delete its chunks."""
    async with database.autocommit() as session:
        if await session.scalar(text("SELECT to_regclass('video_chunks')")) is None:
            return 0
        statement = select(StoredVideo.id, StoredVideo.size, StoredVideo.etag).where(
            StoredVideo.id.in_(select(_CHUNKS.c.video_id).distinct())
        )
        videos = (await session.execute(statement)).all()
    for video_id, size, etag in videos:
        await _move_one(database, store, video_id, size=size, sha256=etag, part_size=part_size)
        logger.info("video_moved_to_store", video_id=str(video_id), size=size)
    return len(videos)


async def _move_one(
    database: Database,
    store: ObjectStore,
    video_id: uuid.UUID,
    *,
    size: int,
    sha256: str,
    part_size: int,
) -> None:
    key = key_of(video_id)
    digest = hashlib.sha256()
    if size <= part_size:
        data = b"".join([piece async for piece in _chunks(database, video_id)])
        digest.update(data)
        _check(digest.hexdigest(), sha256, video_id)
        await store.put(key, data, "application/octet-stream")
    else:
        upload_id = await store.create_multipart(key)
        parts: list[Part] = []
        buffer = bytearray()
        async for piece in _chunks(database, video_id):
            digest.update(piece)
            buffer += piece
            if len(buffer) >= part_size:
                parts.append(
                    await store.upload_part(
                        key, upload_id, len(parts) + 1, bytes(buffer[:part_size])
                    )
                )
                del buffer[:part_size]
        if buffer:
            parts.append(await store.upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
        try:
            _check(digest.hexdigest(), sha256, video_id)
        except ChunksCorrupt:
            await store.abort(key, upload_id)
            raise
        await store.complete(key, upload_id, parts)
    stored = hashlib.sha256()
    async for piece in store.stream(key, 1024 * 1024):
        stored.update(piece)
    if stored.hexdigest() != sha256:
        raise ChunksCorrupt(f"video {video_id}: the stored object does not hash to its SHA-256")
    async with database.transaction() as session:
        await session.execute(delete(_CHUNKS).where(_CHUNKS.c.video_id == video_id))


def _check(computed: str, recorded: str, video_id: uuid.UUID) -> None:
    if computed != recorded:
        raise ChunksCorrupt(f"video {video_id}: its chunks do not hash to its recorded SHA-256")


async def _chunks(database: Database, video_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The video's chunks in order, READ_BATCH per query."""
    seq = 0
    while True:
        async with database.autocommit() as session:
            statement = (
                select(_CHUNKS.c.seq, _CHUNKS.c.data)
                .where(_CHUNKS.c.video_id == video_id, _CHUNKS.c.seq >= seq)
                .order_by(_CHUNKS.c.seq)
                .limit(READ_BATCH)
            )
            rows = (await session.execute(statement)).all()
        for row in rows:
            yield bytes(row.data)
        if len(rows) < READ_BATCH:
            return
        seq = rows[-1].seq + 1


async def _revision(url: str) -> str | None:
    database = Database(url, pool_size=1)
    try:
        async with database.autocommit() as session:
            if await session.scalar(text("SELECT to_regclass('alembic_version')")) is None:
                return None
            found: str | None = await session.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return found
    finally:
        await database.close()
