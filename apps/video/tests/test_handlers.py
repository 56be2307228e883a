"""Every video pattern over real TCP, against a real database, broker and object store; the
bytes go to and from the store over HTTP with the URLs the service grants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select
from vidmesh.contracts import HEALTH
from vidmesh.contracts import video as contract
from vidmesh.contracts.events import VIDEO_DOWNLOADED
from vidmesh.kit.db import Database
from vidmesh.transport import RemoteError, TcpClient

from vidmesh_video.models import Outbox, Upload
from vidmesh_video.objectstore import ObjectMissing, ObjectStore, key_of
from vidmesh_video.repository import VideoRepository
from vidmesh_video.settings import Settings
from vidmesh_video.uploads import Uploads

Sample = Callable[[int], bytes]
MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part size the settings allow, so multipart tests stay small


async def status_of(call: Any) -> int | None:
    with pytest.raises(RemoteError) as caught:
        await call
    return caught.value.status_code


async def test_a_small_upload_is_one_put_and_becomes_a_video(calls: Any, mp4: Sample) -> None:
    data = mp4(1000)
    grant = await calls.start(len(data))
    assert [part["number"] for part in grant["parts"]] == [1]
    assert (await calls.put(grant["parts"][0]["url"], data)).status_code == 200

    video = await calls.finish(grant["uploadId"], "first")

    assert video["id"] == grant["uploadId"]
    assert (video["title"], video["mimetype"], video["size"]) == ("first", "video/mp4", 1000)
    assert video["etag"]
    assert await calls.read(video["id"]) == data


async def test_webm_is_recognised_from_its_stored_bytes(calls: Any, webm: Sample) -> None:
    video = await calls.upload(webm(500))
    assert video["mimetype"] == "video/webm"


async def test_a_large_upload_is_a_multipart_upload_of_declared_parts(
    serve: Any, make_calls: Any, mp4: Sample
) -> None:
    data = mp4(2 * PART + 123)
    async with serve(s3_part_size=PART) as client:
        calls = make_calls(client)
        grant = await calls.start(len(data))
        assert grant["partSize"] == PART
        assert [part["number"] for part in grant["parts"]] == [1, 2, 3]
        video = await calls.upload(data)
        assert video["size"] == len(data)
        assert await calls.read(video["id"]) == data


async def test_an_upload_of_unknown_size_asks_for_each_part(
    serve: Any, make_calls: Any, mp4: Sample
) -> None:
    data = mp4(PART + 10)
    async with serve(s3_part_size=PART) as client:
        calls = make_calls(client)
        video = await calls.upload(data, declare=False)
        assert await calls.read(video["id"]) == data


async def test_status_lists_the_parts_that_arrived_and_fresh_urls_for_the_rest(
    serve: Any, make_calls: Any, mp4: Sample
) -> None:
    data = mp4(2 * PART + 1)
    async with serve(s3_part_size=PART) as client:
        calls = make_calls(client)
        grant = await calls.start(len(data))
        await calls.put(grant["parts"][1]["url"], data[PART : 2 * PART])
        lookup = {"uploadId": grant["uploadId"], "userId": "user-1"}

        status = await client.send(contract.UPLOAD_STATUS, lookup)

        assert [(p["number"], p["size"]) for p in status["parts"]] == [(2, PART)]
        assert [p["number"] for p in status["missing"]] == [1, 3]
        assert await status_of(calls.finish(grant["uploadId"])) == 409  # parts missing
        for part in status["missing"]:
            offset = (part["number"] - 1) * PART
            await calls.put(part["url"], data[offset : offset + PART])
        video = await calls.finish(grant["uploadId"])
        assert await calls.read(video["id"]) == data


async def test_someone_elses_upload_is_not_found(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    upload_id = await calls.send_parts(mp4(100), user_id="owner")
    other = {"uploadId": upload_id, "userId": "someone-else"}
    assert await status_of(client.send(contract.UPLOAD_STATUS, other)) == 404
    assert await status_of(client.send(contract.UPLOAD_ABORT, other)) == 404
    finish = {**other, "title": "stolen"}
    assert await status_of(client.send(contract.UPLOAD_FINISH, finish)) == 404
    assert (await calls.finish(upload_id, user_id="owner"))["userId"] == "owner"


async def test_a_declared_size_over_the_limit_is_refused(serve: Any) -> None:
    async with serve(max_upload_bytes=1000) as client:
        request = {"userId": "u", "filename": "a.mp4", "size": 1001}
        assert await status_of(client.send(contract.UPLOAD_START, request)) == 413


async def test_more_bytes_than_the_limit_are_refused_at_the_finish_and_deleted(
    serve: Any, make_calls: Any, mp4: Sample, http: httpx.AsyncClient
) -> None:
    async with serve(max_upload_bytes=1000) as client:
        calls = make_calls(client)
        grant = await calls.start(None)
        url = (
            await client.send(
                contract.UPLOAD_PART,
                {"uploadId": grant["uploadId"], "userId": "user-1", "number": 1},
            )
        )["url"]
        await calls.put(url, mp4(2000))  # the store takes it: the finish is the check
        assert await status_of(calls.finish(grant["uploadId"])) == 413
        lookup = {"uploadId": grant["uploadId"], "userId": "user-1"}
        assert await status_of(client.send(contract.UPLOAD_STATUS, lookup)) == 404


async def test_a_part_beyond_the_limit_is_refused(serve: Any, make_calls: Any) -> None:
    async with serve(max_upload_bytes=PART, s3_part_size=PART) as client:
        grant = await make_calls(client).start(None)
        request = {"uploadId": grant["uploadId"], "userId": "user-1", "number": 2}
        assert await status_of(client.send(contract.UPLOAD_PART, request)) == 413


async def test_bytes_that_are_not_a_video_return_415_and_nothing_is_kept(
    calls: Any, client: TcpClient, database: Database
) -> None:
    upload_id = await calls.send_parts(b"plain text, not a video" * 10)
    assert await status_of(calls.finish(upload_id)) == 415
    async with database.autocommit() as session:
        assert await session.get(Upload, uuid.UUID(upload_id)) is None
    assert await status_of(client.send(contract.FIND_ONE, {"id": upload_id})) == 404


async def test_a_put_of_another_size_than_declared_is_refused(calls: Any, mp4: Sample) -> None:
    grant = await calls.start(1000)
    await calls.put(grant["parts"][0]["url"], mp4(999))
    assert await status_of(calls.finish(grant["uploadId"])) == 400


async def test_finishing_before_the_bytes_arrived_is_a_conflict(calls: Any) -> None:
    grant = await calls.start(1000)
    assert await status_of(calls.finish(grant["uploadId"])) == 409


async def test_an_aborted_upload_leaves_nothing_behind(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    grant = await calls.start(1000)
    await calls.put(grant["parts"][0]["url"], mp4(1000))
    lookup = {"uploadId": grant["uploadId"], "userId": "user-1"}
    await client.send(contract.UPLOAD_ABORT, lookup)
    assert await status_of(client.send(contract.UPLOAD_STATUS, lookup)) == 404
    assert await status_of(calls.finish(grant["uploadId"])) == 404


async def test_an_upload_id_that_was_never_issued_is_not_found(client: TcpClient) -> None:
    for upload_id in ("junk", str(uuid.uuid4())):
        lookup = {"uploadId": upload_id, "userId": "u"}
        assert await status_of(client.send(contract.UPLOAD_STATUS, lookup)) == 404


async def test_idle_uploads_are_swept_with_their_bytes(
    calls: Any, database: Database, mp4: Sample, store_settings: Settings
) -> None:
    single = await calls.start(1000)
    await calls.put(single["parts"][0]["url"], mp4(1000))
    multipart = await calls.start(None)
    async with ObjectStore(store_settings) as store:
        uploads = Uploads(
            database,
            VideoRepository(),
            store,
            max_upload_bytes=MiB,
            part_size=PART,
            url_ttl=timedelta(minutes=1),
        )
        assert await uploads.sweep(timedelta(0)) >= 2
        with pytest.raises(ObjectMissing):
            await store.head(key_of(single["uploadId"]), 1)
    async with database.autocommit() as session:
        for grant in (single, multipart):
            assert await session.get(Upload, uuid.UUID(grant["uploadId"])) is None


async def test_a_ranged_grant_resolves_the_range_against_the_size(calls: Any, mp4: Sample) -> None:
    data = mp4(1000)
    video = await calls.upload(data)
    grant = await calls.grant(video["id"], range={"first": 10, "last": 19})
    assert (grant["start"], grant["end"]) == (10, 20)
    assert await calls.read(video["id"], range={"first": 10, "last": 19}) == data[10:20]
    assert await calls.read(video["id"], range={"last": 5}) == data[-5:]  # a suffix
    assert await calls.read(video["id"], range={"first": 990, "last": 5000}) == data[990:]


async def test_a_range_past_the_end_is_not_satisfiable(calls: Any, mp4: Sample) -> None:
    video = await calls.upload(mp4(1000))
    assert await status_of(calls.grant(video["id"], range={"first": 1000})) == 416
    assert await status_of(calls.grant(video["id"], range={"last": 0})) == 416


async def test_a_grant_of_an_unknown_or_malformed_video(client: TcpClient) -> None:
    unknown = client.send(contract.GRANT_READ, {"id": str(uuid.uuid4())})
    assert await status_of(unknown) == 404
    assert await status_of(client.send(contract.GRANT_READ, {"id": "nope"})) == 400


@pytest.mark.parametrize(
    ("range_", "counted"),
    [
        (None, 1),
        ({"first": 0}, 1),
        ({"first": 0, "last": 999}, 1),
        ({"first": 0, "last": 5000}, 1),
        ({"last": 1000}, 1),
        ({"first": 0, "last": 0}, 0),
        ({"first": 0, "last": 99}, 0),
        ({"first": 500}, 0),
        ({"last": 10}, 0),
    ],
)
async def test_only_a_read_of_the_whole_video_counts_a_download(
    calls: Any, database: Database, mp4: Sample, range_: Any, counted: int
) -> None:
    video = await calls.upload(mp4(1000))
    await calls.grant(video["id"], userId="reader-1", range=range_)
    assert await download_events(database, video["id"]) == counted


async def test_a_playback_grant_counts_and_serves_inline_with_the_type(
    calls: Any, database: Database, mp4: Sample, http: httpx.AsyncClient
) -> None:
    data = mp4(1000)
    video = await calls.upload(data)
    grant = await calls.grant(video["id"], userId="viewer", playback=True)
    response = await http.get(grant["url"], headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.content == data[:10]
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"].startswith("inline")
    assert await download_events(database, video["id"]) == 1


async def test_an_altered_url_is_refused_by_the_store(
    calls: Any, mp4: Sample, http: httpx.AsyncClient
) -> None:
    video = await calls.upload(mp4(1000))
    url = (await calls.grant(video["id"]))["url"]
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert (await http.get(tampered)).status_code == 403
    other = url.replace(video["id"], str(uuid.uuid4()))
    assert (await http.get(other)).status_code == 403


async def test_an_expired_url_is_refused_by_the_store(
    serve: Any, make_calls: Any, mp4: Sample, http: httpx.AsyncClient
) -> None:
    async with serve(read_url_ttl=1.0) as client:
        calls = make_calls(client)
        video = await calls.upload(mp4(1000))
        url = (await calls.grant(video["id"]))["url"]
        await asyncio.sleep(2.1)
        assert (await http.get(url)).status_code == 403


async def test_the_tutorial_upload_and_download_carry_node_buffers(
    client: TcpClient, mp4: Sample
) -> None:
    data = mp4(5000)
    buffer = {"type": "Buffer", "data": list(data)}
    request = {"userId": "u1", "title": "tutorial", "mimetype": "video/mp4", "buffer": buffer}
    created = await client.send(contract.UPLOAD, request)
    answer = await client.send(contract.DOWNLOAD, {"id": created["id"]})
    assert answer == {"buffer": buffer, "mimetype": "video/mp4", "size": 5000}


async def test_the_tutorial_upload_refuses_what_the_gateway_refuses(client: TcpClient) -> None:
    quicktime = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 100
    for data in (b"\x01\x02\x03", quicktime):
        buffer = {"type": "Buffer", "data": list(data)}
        request = {"userId": "u1", "title": "nope", "buffer": buffer}
        assert await status_of(client.send(contract.UPLOAD, request)) == 415


async def test_the_tutorial_upload_over_its_limit_returns_413(serve: Any, mp4: Sample) -> None:
    async with serve(max_buffer_bytes=1000) as client:
        buffer = {"type": "Buffer", "data": list(mp4(1001))}
        request = {"userId": "u1", "title": "big", "buffer": buffer}
        assert await status_of(client.send(contract.UPLOAD, request)) == 413


async def test_the_tutorial_upload_is_readable_through_a_grant(
    calls: Any, client: TcpClient, mp4: Sample
) -> None:
    data = mp4(3000)
    request = {"userId": "u", "title": "t2", "buffer": {"type": "Buffer", "data": list(data)}}
    created = await client.send(contract.UPLOAD, request)
    assert await calls.read(created["id"]) == data


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


async def test_a_download_event_reaches_kafka_keyed_by_the_video_id(
    calls: Any, mp4: Sample, kafka_bootstrap: str
) -> None:
    video = await calls.upload(mp4(1000))
    await calls.grant(video["id"], userId="reader-9")
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


async def test_health_reports_the_database_the_broker_and_the_store(client: TcpClient) -> None:
    answer = await client.send(HEALTH)
    checks = {"database": True, "broker": True, "store": True}
    assert answer == {"service": "video", "ok": True, "checks": checks}


async def test_a_store_that_is_down_gives_503_and_no_video(
    serve: Any, make_calls: Any, mp4: Sample
) -> None:
    async with serve(s3_endpoint="http://127.0.0.1:9") as client:  # nothing listens there
        calls = make_calls(client)
        assert await status_of(calls.start(None)) == 503
        buffer = {"type": "Buffer", "data": list(mp4(100))}
        request = {"userId": "u", "title": "down", "buffer": buffer}
        assert await status_of(client.send(contract.UPLOAD, request)) == 503
        answer = await client.send(HEALTH)
        assert answer["checks"]["store"] is False


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
