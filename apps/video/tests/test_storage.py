"""Type sniffing, chunked storage in PostgreSQL, and the running upload digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from vidmesh.contracts.video import CHUNK_SIZE
from vidmesh.kit.db import Database

from vidmesh_video.models import VideoChunk
from vidmesh_video.storage import PostgresStorage, UploadDigests, sniff_mimetype

Sample = Callable[[int], bytes]


def test_an_ftyp_box_at_offset_four_is_mp4(mp4: Sample) -> None:
    assert sniff_mimetype(mp4(64)) == "video/mp4"


def test_an_ebml_header_with_doctype_webm_is_webm(webm: Sample) -> None:
    assert sniff_mimetype(webm(64)) == "video/webm"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\x00\x00\x18ftyp",  # too short for a whole ftyp box header
        bytes.fromhex("1a45dfa3934282886d6174726f736b61"),  # Matroska, not WebM
        b"\x1a\x45\xdf\xa3" + b"\x00" * 40,  # EBML without a DocType
        b"GIF89a" + b"\x00" * 40,
        b"%PDF-1.7" + b"\x00" * 40,
    ],
)
def test_anything_else_is_no_video(head: bytes) -> None:
    assert sniff_mimetype(head) is None


async def collect(storage: PostgresStorage, video_id: uuid.UUID, start: int, end: int) -> bytes:
    return b"".join([piece async for piece in storage.read(video_id, start=start, end=end)])


async def append_in_pieces(
    database: Database, storage: PostgresStorage, video_id: uuid.UUID, data: bytes, piece: int
) -> None:
    for offset in range(0, len(data), piece):
        async with database.transaction() as session:
            await storage.append(
                session, video_id, offset=offset, data=data[offset : offset + piece]
            )


async def test_unaligned_pieces_are_stored_as_whole_chunks(database: Database) -> None:
    storage, video_id, data = (
        PostgresStorage(database),
        uuid.uuid4(),
        os.urandom(3 * CHUNK_SIZE + 5),
    )
    await append_in_pieces(database, storage, video_id, data, 100_003)
    async with database.transaction() as session:
        lengths = await session.scalars(
            select(func.length(VideoChunk.data))
            .where(VideoChunk.video_id == video_id)
            .order_by(VideoChunk.seq)
        )
        assert list(lengths) == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 5]
    assert await collect(storage, video_id, 0, len(data)) == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (5, CHUNK_SIZE), (CHUNK_SIZE - 1, CHUNK_SIZE + 1), (10, 6 * CHUNK_SIZE + 9)],
)
async def test_a_range_reads_exactly_its_bytes(database: Database, start: int, end: int) -> None:
    storage, video_id, data = (
        PostgresStorage(database),
        uuid.uuid4(),
        os.urandom(6 * CHUNK_SIZE + 9),
    )
    async with database.transaction() as session:
        await storage.append(session, video_id, offset=0, data=data)
    pieces = [piece async for piece in storage.read(video_id, start=start, end=end)]
    assert b"".join(pieces) == data[start:end]
    assert max(len(piece) for piece in pieces) <= CHUNK_SIZE


async def test_head_and_digest_read_the_stored_bytes(database: Database, mp4: Sample) -> None:
    storage, video_id, data = PostgresStorage(database), uuid.uuid4(), mp4(CHUNK_SIZE + 1)
    async with database.transaction() as session:
        await storage.append(session, video_id, offset=0, data=data)
        assert await storage.head(session, video_id) == data[:64]
    async with database.autocommit() as session:
        digest = await storage.digest(session, video_id, len(data))
    assert digest == hashlib.sha256(data).hexdigest()


async def test_bytes_written_in_a_rolled_back_transaction_are_gone(database: Database) -> None:
    storage, video_id = PostgresStorage(database), uuid.uuid4()

    async def failing_write() -> None:
        async with database.transaction() as session:
            await storage.append(session, video_id, offset=0, data=b"abc")
            raise RuntimeError("the metadata insert failed")

    with pytest.raises(RuntimeError):
        await failing_write()
    async with database.transaction() as session:
        assert await storage.head(session, video_id) == b""


def test_a_running_digest_covers_the_chunks_in_order() -> None:
    digests, upload_id = UploadDigests(), uuid.uuid4()
    digests.start(upload_id)
    digests.advance(upload_id, 0, b"abc")
    digests.advance(upload_id, 3, b"def")
    assert digests.pop(upload_id, 6) == hashlib.sha256(b"abcdef").hexdigest()


def test_a_digest_with_a_gap_or_another_size_is_unknown() -> None:
    digests, upload_id = UploadDigests(), uuid.uuid4()
    digests.start(upload_id)
    digests.advance(upload_id, 0, b"abc")
    digests.advance(upload_id, 10, b"def")  # a chunk another replica received
    assert digests.pop(upload_id, 13) is None
    digests.start(upload_id)
    digests.advance(upload_id, 0, b"abc")
    assert digests.pop(upload_id, 4) is None


def test_the_oldest_digests_are_evicted_past_capacity() -> None:
    digests = UploadDigests(capacity=2)
    first, *others = [uuid.uuid4() for _ in range(3)]
    for upload_id in (first, *others):
        digests.start(upload_id)
    assert digests.pop(first, 0) is None
    assert digests.pop(others[-1], 0) == hashlib.sha256().hexdigest()
