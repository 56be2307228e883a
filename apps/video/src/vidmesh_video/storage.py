"""Video bytes: type-sniffed, stored in chunks of ``CHUNK_SIZE``, streamed back chunk by chunk.

:class:`VideoStorage` is what the handlers need; :class:`PostgresStorage` keeps the bytes in
the service's own database, written in the caller's transaction, so a video's bytes and its
metadata row commit (or vanish) together. An object store would be another implementation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Final, Protocol, cast

from sqlalchemy import Select, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from vidmesh.contracts.video import CHUNK_SIZE, Mimetype
from vidmesh.kit.db import Database

from vidmesh_video.models import VideoChunk

SNIFF_BYTES: Final = 64
"""Bytes read to tell the container format."""
READ_AHEAD: Final = 4
"""Chunks fetched per query while streaming (1 MiB): few round trips, little memory."""
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE: Final = b"\x42\x82"
_CHUNKS: Final = cast(Table, VideoChunk.__table__)


def sniff_mimetype(head: bytes) -> Mimetype | None:
    """The type of a video from its first bytes: MP4 (an ``ftyp`` box first) or WebM (an EBML
    header whose DocType is ``webm``); None for anything else."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(_EBML_MAGIC) and _ebml_doctype(head) == b"webm":
        return "video/webm"
    return None


def _ebml_doctype(head: bytes) -> bytes | None:
    at = head.find(_EBML_DOCTYPE, 4)
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # a longer size field: no DocType we accept is that long
        return None
    size = size_byte & 0x7F
    return head[at + 3 : at + 3 + size]


def extension_of(mimetype: Mimetype) -> str:
    return mimetype.removeprefix("video/")


class VideoStorage(Protocol):
    """Where the bytes of uploads and videos live; writes join the caller's transaction."""

    async def append(
        self, session: AsyncSession, video_id: uuid.UUID, *, offset: int, data: bytes
    ) -> None:
        """Add ``data`` at ``offset``, the number of bytes stored so far."""

    async def head(self, session: AsyncSession, video_id: uuid.UUID) -> bytes:
        """The first SNIFF_BYTES bytes (fewer for a shorter video)."""

    async def digest(self, session: AsyncSession, video_id: uuid.UUID, size: int) -> str:
        """SHA-256 (hex) of the first ``size`` bytes, read back in the caller's session."""

    def read(self, video_id: uuid.UUID, *, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes in ``[start, end)``, at most CHUNK_SIZE per item, in order."""

    async def delete(self, session: AsyncSession, video_id: uuid.UUID) -> None: ...


class PostgresStorage:
    """Chunks in the ``video_chunks`` table: row ``seq`` holds bytes from ``seq * CHUNK_SIZE``."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def append(
        self, session: AsyncSession, video_id: uuid.UUID, *, offset: int, data: bytes
    ) -> None:
        # Callers may send pieces of any size: top up a short last chunk first, so every chunk
        # but the last stays CHUNK_SIZE long and a byte's chunk is its offset // CHUNK_SIZE.
        filled = offset % CHUNK_SIZE
        if filled and data:
            top_up, data = data[: CHUNK_SIZE - filled], data[CHUNK_SIZE - filled :]
            await session.execute(
                update(VideoChunk)
                .where(VideoChunk.video_id == video_id, VideoChunk.seq == offset // CHUNK_SIZE)
                .values(data=VideoChunk.data.concat(top_up))
            )
            offset += len(top_up)
        await self._insert(session, video_id, offset=offset, data=data)

    async def _insert(
        self, session: AsyncSession, video_id: uuid.UUID, *, offset: int, data: bytes
    ) -> None:
        rows = [
            {
                "video_id": video_id,
                "seq": (offset + at) // CHUNK_SIZE,
                "data": data[at : at + CHUNK_SIZE],
            }
            for at in range(0, len(data), CHUNK_SIZE)
        ]
        if rows:
            await session.execute(insert(_CHUNKS), rows)  # Core: not the ORM's bulk path

    async def head(self, session: AsyncSession, video_id: uuid.UUID) -> bytes:
        # substring() of an EXTERNAL value fetches only the slices it needs.
        statement = select(func.substring(VideoChunk.data, 1, SNIFF_BYTES)).where(
            VideoChunk.video_id == video_id, VideoChunk.seq == 0
        )
        return bytes(await session.scalar(statement) or b"")

    async def digest(self, session: AsyncSession, video_id: uuid.UUID, size: int) -> str:
        # In the caller's session: a handler holding a connection never waits for a second one
        # (the pool has no overflow; see main.py).
        sha, left, seq = hashlib.sha256(), size, 0
        while left > 0:
            rows = (await session.execute(_chunks(video_id, seq, seq + READ_AHEAD))).all()
            if not rows:
                raise LookupError(f"video {video_id} has no chunk {seq}")
            for row in rows:
                piece = row.data[:left]
                sha.update(piece)
                left -= len(piece)
            seq = rows[-1].seq + 1
        return sha.hexdigest()

    async def read(self, video_id: uuid.UUID, *, start: int, end: int) -> AsyncIterator[bytes]:
        seq, last = start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
        while start < end:
            # A short session per query: a slow reader holds no connection between fetches.
            # Autocommit: chunks never change, so one query needs no BEGIN and ROLLBACK.
            async with self.database.autocommit() as session:
                rows = (
                    await session.execute(_chunks(video_id, seq, min(seq + READ_AHEAD, last + 1)))
                ).all()
            if not rows:
                raise LookupError(f"video {video_id} has no chunk {seq}")
            for row in rows:
                base = row.seq * CHUNK_SIZE
                piece = row.data[start - base : end - base]
                start += len(piece)
                yield piece
            seq = rows[-1].seq + 1

    async def delete(self, session: AsyncSession, video_id: uuid.UUID) -> None:
        await session.execute(delete(VideoChunk).where(VideoChunk.video_id == video_id))


def _chunks(video_id: uuid.UUID, first: int, stop: int) -> Select[int, bytes]:
    return (
        select(VideoChunk.seq, VideoChunk.data)
        .where(VideoChunk.video_id == video_id, VideoChunk.seq >= first, VideoChunk.seq < stop)
        .order_by(VideoChunk.seq)
    )


class UploadDigests:
    """SHA-256 of each upload, advanced chunk by chunk in this process, so finishing a large
    upload need not read it back. An upload whose chunks went to another replica (or that was
    evicted) has none, and its digest is read back from storage instead."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._running: OrderedDict[uuid.UUID, tuple[int, hashlib._Hash]] = OrderedDict()

    def start(self, upload_id: uuid.UUID) -> None:
        self._running[upload_id] = (0, hashlib.sha256())
        while len(self._running) > self.capacity:
            self._running.popitem(last=False)

    def advance(self, upload_id: uuid.UUID, offset: int, data: bytes) -> None:
        """Add a committed chunk; a gap (a chunk this process did not see) drops the digest."""
        state = self._running.get(upload_id)
        if state is None:
            return
        received, sha = state
        if received != offset:
            del self._running[upload_id]
            return
        sha.update(data)
        self._running[upload_id] = (received + len(data), sha)

    def pop(self, upload_id: uuid.UUID, size: int) -> str | None:
        """The hex digest when it covers exactly ``size`` bytes; None otherwise."""
        state = self._running.pop(upload_id, None)
        if state is None or state[0] != size:
            return None
        return state[1].hexdigest()

    def discard(self, upload_id: uuid.UUID) -> None:
        self._running.pop(upload_id, None)
