"""The video repository's statements on the migrated database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select, update
from vidmesh.contracts.events import VIDEO_DOWNLOADED
from vidmesh.kit.db import Database

from vidmesh_video.models import Outbox, Upload
from vidmesh_video.repository import VideoRepository


async def add(database: Database, title: str) -> str:
    async with database.transaction() as session:
        video = await VideoRepository().add_video(
            session,
            video_id=uuid.uuid4(),
            title=title,
            mimetype="video/mp4",
            size=1,
            user_id="u",
            filename="f.mp4",
            etag="0" * 64,
        )
    return video.id


async def test_a_download_is_an_outbox_event_keyed_by_the_video_id(database: Database) -> None:
    video_id = str(uuid.uuid4())
    async with database.transaction() as session:
        await VideoRepository().record_download(session, video_id, user_id="u9")
    async with database.transaction() as session:
        row = await session.scalar(select(Outbox).where(Outbox.key == video_id.encode()))
    assert row is not None
    assert (row.topic, row.published_at) == (VIDEO_DOWNLOADED, None)
    event = orjson.loads(row.value or b"")
    assert (event["id"], event["userId"]) == (video_id, "u9")
    assert uuid.UUID(event["eventId"])


async def test_two_downloads_have_different_event_ids(database: Database) -> None:
    video_id = str(uuid.uuid4())
    async with database.transaction() as session:
        for _ in range(2):
            await VideoRepository().record_download(session, video_id, user_id=None)
    async with database.transaction() as session:
        values = await session.scalars(select(Outbox.value).where(Outbox.key == video_id.encode()))
        assert len({orjson.loads(value or b"")["eventId"] for value in values}) == 2


async def test_a_page_is_newest_first(database: Database) -> None:
    ids = [await add(database, f"v{n}") for n in range(3)]
    async with database.transaction() as session:
        items, total = await VideoRepository().page(session, page=1, size=3)
    assert [item.id for item in items] == ids[::-1]
    assert total >= 3


async def test_videos_fetches_several_ids_at_once(database: Database) -> None:
    ids = [await add(database, f"v{n}") for n in range(2)]
    async with database.transaction() as session:
        found = await VideoRepository().videos(session, [uuid.UUID(i) for i in ids])
    assert sorted(video.id for video in found) == sorted(ids)


async def create_upload(database: Database, user_id: str = "u") -> uuid.UUID:
    upload_id = uuid.uuid4()
    async with database.transaction() as session:
        await VideoRepository().create_upload(
            session,
            upload_id=upload_id,
            user_id=user_id,
            filename="f",
            size=None,
            part_size=5 * 1024 * 1024,
            store_upload_id="store-upload-1",
        )
    return upload_id


async def test_only_uploads_idle_since_the_cutoff_are_listed(database: Database) -> None:
    repository, upload_id = VideoRepository(), await create_upload(database)
    async with database.transaction() as session:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        idle = await repository.idle_uploads(session, before=hour_ago)
        assert upload_id not in [upload.id for upload in idle]
        soon = datetime.now(UTC) + timedelta(seconds=1)
        idle = await repository.idle_uploads(session, before=soon, limit=10_000)
        assert upload_id in [upload.id for upload in idle]


async def test_an_upload_is_found_for_its_owner_only(database: Database) -> None:
    repository, upload_id = VideoRepository(), await create_upload(database, user_id="owner")
    async with database.autocommit() as session:
        found = await repository.upload(session, upload_id, user_id="owner")
        assert found is not None
        assert (found.store_upload_id, found.size) == ("store-upload-1", None)
        assert await repository.upload(session, upload_id, user_id="other") is None


async def test_touching_an_upload_keeps_it_from_the_sweeper(database: Database) -> None:
    repository, upload_id = VideoRepository(), await create_upload(database)
    async with database.autocommit() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=2))
        )
        await repository.touch_upload(session, upload_id)
    async with database.transaction() as session:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        idle = await repository.idle_uploads(session, before=hour_ago, limit=10_000)
        assert upload_id not in [upload.id for upload in idle]
