"""Every video pattern over real TCP, against a real database and broker."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select
from vidmesh.contracts import HEALTH
from vidmesh.contracts import video as contract
from vidmesh.contracts.events import VIDEO_DOWNLOADED
from vidmesh.contracts.video import CHUNK_SIZE
from vidmesh.kit.db import Database
from vidmesh.transport import RemoteError, TcpClient

from vidmesh_video.handlers import VideoHandlers
from vidmesh_video.models import Outbox, Upload, VideoChunk
from vidmesh_video.repository import VideoRepository
from vidmesh_video.storage import PostgresStorage

Sample = Callable[[int], bytes]


async def status_of(call: Any) -> int | None:
    with pytest.raises(RemoteError) as caught:
        await call
    return caught.value.status_code


async def test_a_chunked_upload_becomes_a_video_with_its_type_size_and_etag(
    calls: Any, mp4: Sample
) -> None:
    data = mp4(2 * CHUNK_SIZE + 10)
    video = await calls.upload(data, title="holiday", user_id="user-7")
    assert video["mimetype"] == "video/mp4"
    assert (video["size"], video["title"], video["userId"]) == (len(data), "holiday", "user-7")
    assert video["etag"] == hashlib.sha256(data).hexdigest()
    assert video["filename"] == "a.mp4"


async def test_webm_is_recognised_from_its_bytes(calls: Any, webm: Sample) -> None:
    video = await calls.upload(webm(1000))
    assert video["mimetype"] == "video/webm"


async def test_chunks_of_any_size_read_back_whole(calls: Any, mp4: Sample) -> None:
    data = mp4(3 * CHUNK_SIZE + 123)
    video = await calls.upload(data, piece=100_000)
    assert video["etag"] == hashlib.sha256(data).hexdigest()
    assert await calls.read(video["id"]) == data


async def test_read_streams_pieces_of_at_most_one_chunk(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    video = await calls.upload(mp4(2 * CHUNK_SIZE + 1))
    sizes = [len(c["data"]) async for c in client.stream(contract.READ, {"id": video["id"]})]
    assert len(sizes) == 3
    assert max(sizes) <= (CHUNK_SIZE * 4) // 3 + 4


async def test_read_returns_the_bytes_of_a_range(calls: Any, mp4: Sample) -> None:
    data = mp4(3 * CHUNK_SIZE)
    video = await calls.upload(data)
    start, end = CHUNK_SIZE - 5, 2 * CHUNK_SIZE + 7
    assert await calls.read(video["id"], start=start, end=end) == data[start:end]


async def test_read_with_an_end_past_the_size_stops_at_the_last_byte(
    calls: Any, mp4: Sample
) -> None:
    data = mp4(1000)
    video = await calls.upload(data)
    assert await calls.read(video["id"], start=990, end=5000) == data[990:]


async def test_read_from_past_the_end_is_not_satisfiable(calls: Any, mp4: Sample) -> None:
    video = await calls.upload(mp4(1000))
    assert await status_of(calls.read(video["id"], start=1000)) == 416


async def test_read_of_an_unknown_video_returns_not_found(calls: Any) -> None:
    assert await status_of(calls.read(str(uuid.uuid4()))) == 404


async def test_read_with_a_malformed_id_returns_bad_request(calls: Any) -> None:
    assert await status_of(calls.read("not-a-uuid")) == 400


async def test_a_chunk_at_the_wrong_offset_is_refused_with_conflict(
    calls: Any, mp4: Sample
) -> None:
    upload_id = await calls.send_chunks(mp4(1000))
    assert await status_of(calls.chunk(upload_id, 0, b"again")) == 409
    assert await status_of(calls.chunk(upload_id, 2000, b"gap")) == 409


async def test_an_upload_past_the_size_limit_is_refused_and_dropped(
    serve: Any, make_calls: Any, database: Database, mp4: Sample
) -> None:
    async with serve(max_upload_bytes=CHUNK_SIZE + 100) as client:
        calls = make_calls(client)
        upload_id = await calls.send_chunks(mp4(CHUNK_SIZE))
        assert await status_of(calls.chunk(upload_id, CHUNK_SIZE, b"x" * 101)) == 413
        assert await status_of(calls.finish(upload_id)) == 404
    assert await stored_chunks(database, upload_id) == 0


async def test_finishing_bytes_that_are_not_a_video_returns_415_and_keeps_nothing(
    calls: Any, database: Database
) -> None:
    upload_id = await calls.send_chunks(b"%PDF-1.7 not a video" * 100)
    assert await status_of(calls.finish(upload_id)) == 415
    assert await stored_chunks(database, upload_id) == 0
    assert await status_of(calls.finish(upload_id)) == 404


async def test_an_aborted_upload_leaves_nothing_behind(
    calls: Any, client: TcpClient, database: Database, mp4: Sample
) -> None:
    upload_id = await calls.send_chunks(mp4(CHUNK_SIZE + 1))
    await client.send(contract.UPLOAD_ABORT, {"uploadId": upload_id})
    assert await stored_chunks(database, upload_id) == 0
    assert await status_of(calls.chunk(upload_id, CHUNK_SIZE + 1, b"more")) == 404


async def test_a_chunk_that_is_not_base64_is_a_bad_request(calls: Any, client: TcpClient) -> None:
    upload_id = await calls.send_chunks(b"")
    payload = {"uploadId": upload_id, "offset": 0, "data": "not base64!"}
    assert await status_of(client.send(contract.UPLOAD_CHUNK, payload)) == 400


async def test_the_tutorial_upload_and_download_carry_node_buffers(
    client: TcpClient, mp4: Sample
) -> None:
    data = mp4(5000)
    buffer = {"type": "Buffer", "data": list(data)}
    request = {"userId": "u1", "title": "tutorial", "mimetype": "video/mp4", "buffer": buffer}
    created = await client.send(contract.UPLOAD, request)
    answer = await client.send(contract.DOWNLOAD, {"id": created["id"]})
    assert answer == {"buffer": buffer, "mimetype": "video/mp4", "size": 5000}


async def test_the_tutorial_upload_of_a_non_video_returns_415(client: TcpClient) -> None:
    request = {"userId": "u1", "title": "nope", "buffer": {"type": "Buffer", "data": [1, 2, 3]}}
    assert await status_of(client.send(contract.UPLOAD, request)) == 415


async def test_the_tutorial_upload_over_its_limit_returns_413(serve: Any, mp4: Sample) -> None:
    async with serve(max_buffer_bytes=1000) as client:
        buffer = {"type": "Buffer", "data": list(mp4(1001))}
        request = {"userId": "u1", "title": "big", "buffer": buffer}
        assert await status_of(client.send(contract.UPLOAD, request)) == 413


async def test_find_one_returns_the_metadata(calls: Any, client: TcpClient, mp4: Sample) -> None:
    video = await calls.upload(mp4(100))
    assert await client.send(contract.FIND_ONE, {"id": video["id"]}) == video


async def test_find_one_of_an_unknown_video_returns_not_found(client: TcpClient) -> None:
    assert await status_of(client.send(contract.FIND_ONE, {"id": str(uuid.uuid4())})) == 404


async def test_find_many_answers_known_ids_in_order_and_leaves_out_the_rest(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    first, second = await calls.upload(mp4(100)), await calls.upload(mp4(100))
    ids = [second["id"], str(uuid.uuid4()), "junk", first["id"]]
    found = await client.send(contract.FIND_MANY, {"ids": ids})
    assert [video["id"] for video in found] == [second["id"], first["id"]]


async def test_list_pages_newest_first_with_the_total(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    made = [await calls.upload(mp4(100), title=f"video {n}") for n in range(3)]
    first = await client.send(contract.LIST, {"page": 1, "size": 2})
    second = await client.send(contract.LIST, {"page": 2, "size": 2})
    assert [v["id"] for v in first["items"]] == [made[2]["id"], made[1]["id"]]
    assert second["items"][0]["id"] == made[0]["id"]
    assert first["total"] >= 3
    assert (first["page"], first["size"]) == (1, 2)


async def test_a_read_from_byte_zero_records_one_download_event(
    calls: Any, database: Database, mp4: Sample
) -> None:
    video = await calls.upload(mp4(1000))
    await calls.read(video["id"], start=10)
    assert await download_events(database, video["id"]) == 0
    await calls.read(video["id"], userId="reader-1")
    assert await download_events(database, video["id"]) == 1


async def test_a_download_event_reaches_kafka_keyed_by_the_video_id(
    calls: Any, mp4: Sample, kafka_bootstrap: str
) -> None:
    video = await calls.upload(mp4(1000))
    await calls.read(video["id"], userId="reader-9")
    key, event = await first_event_for(kafka_bootstrap, video["id"])
    assert key == video["id"].encode()
    assert (event["id"], event["userId"]) == (video["id"], "reader-9")
    assert uuid.UUID(event["eventId"])
    assert event["downloadedAt"]


async def test_the_tutorial_download_records_a_download_event(
    client: TcpClient, database: Database, mp4: Sample
) -> None:
    buffer = {"type": "Buffer", "data": list(mp4(100))}
    created = await client.send(contract.UPLOAD, {"userId": "u", "title": "t1", "buffer": buffer})
    await client.send(contract.DOWNLOAD, {"id": created["id"]})
    assert await download_events(database, created["id"]) == 1


async def test_health_reports_the_database_and_the_broker(client: TcpClient) -> None:
    answer = await client.send(HEALTH)
    assert answer == {"service": "video", "ok": True, "checks": {"database": True, "broker": True}}


async def test_idle_uploads_are_swept_with_their_chunks(
    calls: Any, database: Database, mp4: Sample
) -> None:
    upload_id = await calls.send_chunks(mp4(1000))
    storage = PostgresStorage(database)
    handlers = VideoHandlers(
        database, VideoRepository(), storage, max_upload_bytes=1, max_buffer_bytes=1
    )
    assert await handlers.sweep_uploads(timedelta(0)) >= 1
    assert await stored_chunks(database, upload_id) == 0
    async with database.transaction() as session:
        assert await session.get(Upload, uuid.UUID(upload_id)) is None


async def stored_chunks(database: Database, upload_id: str) -> int:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(VideoChunk.seq).where(VideoChunk.video_id == uuid.UUID(upload_id))
        )
        return len(list(rows))


async def download_events(database: Database, video_id: str) -> int:
    async with database.transaction() as session:
        rows = await session.scalars(select(Outbox.id).where(Outbox.key == video_id.encode()))
        return len(list(rows))


async def first_event_for(bootstrap: str, video_id: str) -> tuple[bytes, dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        VIDEO_DOWNLOADED, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(10):
            async for record in consumer:
                event = orjson.loads(record.value)
                if event["id"] == video_id:
                    return record.key, event
    finally:
        await consumer.stop()
    raise AssertionError("the stream of events ended")
