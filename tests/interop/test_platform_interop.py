"""The tutorial's NestJS side against vidmesh's real user and video services.

A Nest ``ClientProxy`` (``nestpeer/client.js``) plays the calls the tutorial's api-gateway makes,
with its patterns and payload shapes, and must get the tutorial's answers; errors arrive as Nest's
``{statusCode, message, error}`` where the tutorial gave a generic 500. A Nest Kafka microservice
(``nestpeer/kafka-server.js``, like the tutorial's analytics service) must receive the
``video_downloaded`` events our outbox relay publishes.

The services run in the test's event loop on port 0 (``build_service``, as their own tests), on
the session's migrated databases and broker; the Nest peers are Node.js subprocesses.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from vidmesh.devstack.nest import run_nest_client
from vidmesh.devstack.nest_kafka import NestKafkaServer, nest_kafka_server
from vidmesh.devstack.s3 import ObjectStore
from vidmesh.devstack.samples import sample_mp4
from vidmesh.transport import Microservice, TcpServer
from vidmesh_user.errors import EmailTaken, InvalidCredentials
from vidmesh_user.main import build_service as build_user_service
from vidmesh_user.settings import Settings as UserSettings
from vidmesh_video.errors import VideoNotFound
from vidmesh_video.main import build_service as build_video_service
from vidmesh_video.settings import Settings as VideoSettings
from vidmesh_video.upgrade import prepare_store

pytestmark = pytest.mark.interop

# The tutorial's patterns and topic, written out as its gateway and analytics service write them
# (seed-reference §3, §4) rather than taken from vidmesh.contracts: if a contract drifted from the
# tutorial, a test built on the contract would follow it and still pass.
FIND_ONE_BY_EMAIL = {"cmd": "findOneByEmail"}
CREATE = {"cmd": "create"}
VALIDATE = {"cmd": "validate"}
UPLOAD = {"cmd": "upload"}
DOWNLOAD = {"cmd": "download"}
VIDEO_DOWNLOADED = "video_downloaded"

PASSWORD = "Tutorial-Passw0rd!"
VIDEO_SIZE = 4096


def send(pattern: dict[str, str], data: Any) -> dict[str, Any]:
    return {"kind": "send", "pattern": pattern, "data": data}


def node_buffer(data: bytes) -> dict[str, Any]:
    """A Node Buffer as the tutorial's gateway sends it: JSON.stringify writes exactly this."""
    return {"type": "Buffer", "data": list(data)}


def tutorial_upload(data: bytes, user_id: str) -> dict[str, Any]:
    """The payload of the tutorial's ``VideoService.upload`` for a multer file."""
    return {
        "userId": user_id,
        "title": "Cats on a train",
        "mimetype": "video/mp4",
        "extension": "mp4",
        "buffer": node_buffer(data),
    }


def port_of(service: Microservice) -> int:
    return cast(TcpServer, service.transports[0]).port


def new_email() -> str:
    return f"nest-{uuid.uuid4().hex}@example.com"


def answered_id(result: dict[str, Any]) -> str:
    """The id of a ``{"ok": {"id": <uuid>}}`` answer, checked to be that and nothing more."""
    assert result.keys() == {"ok"}, result
    assert result["ok"].keys() == {"id"}, result
    video_id: str = result["ok"]["id"]
    assert str(uuid.UUID(video_id)) == video_id
    return video_id


# -- services -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def user_database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_user")


@pytest.fixture(scope="session")
def video_database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_video")


@pytest.fixture
async def user_port(nest_packages: Path, user_database_url: str) -> AsyncIterator[int]:
    """The user service on a free port."""
    settings = UserSettings(
        port=0, database_url=user_database_url, drain_timeout=5, tls_enabled=False
    )
    async with build_user_service(settings) as service:
        yield port_of(service)


@pytest.fixture
async def video_port(
    nest_packages: Path,
    video_database_url: str,
    kafka_bootstrap: str,
    object_store: ObjectStore,
    unique_bucket: str,
) -> AsyncIterator[int]:
    """The video service, its outbox relay publishing to the session's broker and its bytes in
    a bucket of its own in the session's object store, on a free port."""
    settings = VideoSettings(
        port=0,
        database_url=video_database_url,
        kafka_bootstrap=kafka_bootstrap,
        drain_timeout=5,
        tls_enabled=False,  # the tutorial's NestJS 9 gateway has no TLS client
        s3_endpoint=object_store.endpoint,
        s3_region=object_store.region,
        s3_access_key_id=object_store.access_key_id,
        s3_secret_access_key=object_store.secret_access_key,
        s3_bucket=unique_bucket,
    )
    await prepare_store(settings)  # the bucket, as `migrate` makes it
    async with build_video_service(settings) as service:
        yield port_of(service)


@pytest.fixture
def nest_analytics(
    nest_packages: Path, kafka_bootstrap: str, unique_group: str
) -> Iterator[NestKafkaServer]:
    """A Nest Kafka microservice with an ``@EventPattern('video_downloaded')``, as the tutorial's
    analytics service, in a group of its own (it reads the topic from the beginning)."""
    with nest_kafka_server(kafka_bootstrap, {"event": VIDEO_DOWNLOADED}, group=unique_group) as s:
        yield s


async def events_keyed(
    server: NestKafkaServer, key: str, count: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The next ``count`` events the Nest consumer received with ``key``. The topic is shared by
    every test of the session, so events of other videos are skipped."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while len(found) < count:
        left = max(0.0, deadline - time.monotonic())
        [event] = await asyncio.to_thread(server.take_events, 1, left)
        if event["key"] == key:
            found.append(event)
    return found


# -- user service ---------------------------------------------------------------------------------


async def test_nest_find_one_by_email_with_bare_string_answers_null_id_then_created_id(
    user_port: int,
) -> None:
    email = new_email()
    before, created, after = await run_nest_client(
        user_port,
        [
            send(FIND_ONE_BY_EMAIL, email),
            send(CREATE, {"email": email, "password": PASSWORD}),
            send(FIND_ONE_BY_EMAIL, email),
        ],
    )
    assert before == {"ok": {"id": None}}
    user_id = answered_id(created)
    assert after == {"ok": {"id": user_id}}


async def test_nest_create_with_taken_email_receives_structured_409(user_port: int) -> None:
    email = new_email()
    first, second = await run_nest_client(
        user_port,
        [
            send(CREATE, {"email": email, "password": PASSWORD}),
            send(CREATE, {"email": email, "password": "Another-Passw0rd!"}),
        ],
    )
    answered_id(first)
    assert second == {
        "err": {"statusCode": 409, "message": EmailTaken.default_message, "error": "Conflict"}
    }


async def test_nest_validate_answers_id_for_good_credentials_and_one_401_for_bad_ones(
    user_port: int,
) -> None:
    email = new_email()
    created, good, wrong_password, unknown_email = await run_nest_client(
        user_port,
        [
            send(CREATE, {"email": email, "password": PASSWORD}),
            send(VALIDATE, {"email": email, "password": PASSWORD}),
            send(VALIDATE, {"email": email, "password": PASSWORD + "x"}),
            send(VALIDATE, {"email": new_email(), "password": PASSWORD}),
        ],
    )
    assert good == {"ok": {"id": answered_id(created)}}
    unauthorized = {
        "statusCode": 401,
        "message": InvalidCredentials.default_message,
        "error": "Unauthorized",
    }
    # The same answer whether the email or the password was wrong: neither is revealed.
    assert wrong_password == {"err": unauthorized}
    assert unknown_email == {"err": unauthorized}


# -- video service --------------------------------------------------------------------------------


async def test_nest_upload_of_node_buffer_then_download_returns_the_same_bytes(
    video_port: int,
) -> None:
    data = sample_mp4(VIDEO_SIZE, seed=5)
    [uploaded] = await run_nest_client(
        video_port, [send(UPLOAD, tutorial_upload(data, str(uuid.uuid4())))]
    )
    video_id = answered_id(uploaded)

    [downloaded] = await run_nest_client(video_port, [send(DOWNLOAD, {"id": video_id})])
    assert downloaded == {
        "ok": {"buffer": node_buffer(data), "mimetype": "video/mp4", "size": VIDEO_SIZE}
    }


async def test_nest_download_of_unknown_video_receives_structured_404(video_port: int) -> None:
    data = sample_mp4(VIDEO_SIZE, seed=7)
    [uploaded] = await run_nest_client(
        video_port, [send(UPLOAD, tutorial_upload(data, str(uuid.uuid4())))]
    )
    missing, after = await run_nest_client(
        video_port,
        [send(DOWNLOAD, {"id": str(uuid.uuid4())}), send(DOWNLOAD, {"id": answered_id(uploaded)})],
    )
    # The tutorial answered a generic error here, which its gateway turned into a 500.
    assert missing == {
        "err": {"statusCode": 404, "message": VideoNotFound.default_message, "error": "Not Found"}
    }
    # The connection is still in step after the error.
    assert after == {
        "ok": {"buffer": node_buffer(data), "mimetype": "video/mp4", "size": VIDEO_SIZE}
    }


# -- Kafka ----------------------------------------------------------------------------------------


async def test_nest_kafka_consumer_receives_a_video_downloaded_event_for_each_download(
    nest_analytics: NestKafkaServer, video_port: int
) -> None:
    data = sample_mp4(VIDEO_SIZE, seed=6)
    uploader = str(uuid.uuid4())
    [uploaded] = await run_nest_client(video_port, [send(UPLOAD, tutorial_upload(data, uploader))])
    video_id = answered_id(uploaded)
    started = datetime.now(UTC)

    downloads = await run_nest_client(video_port, [send(DOWNLOAD, {"id": video_id})] * 2)
    assert [result.keys() for result in downloads] == [{"ok"}, {"ok"}]

    events = await events_keyed(nest_analytics, video_id, 2)
    for event in events:
        assert event["topic"] == VIDEO_DOWNLOADED
        assert event["headers"] == {}
        value = event["data"]
        # The tutorial's consumer reads message.id; the rest makes each download countable once.
        assert value.keys() == {"id", "eventId", "userId", "downloadedAt"}
        assert value["id"] == video_id
        # The tutorial's download names no downloader, so there is none to report.
        assert value["userId"] is None
        uuid.UUID(value["eventId"])
        downloaded_at = datetime.fromisoformat(value["downloadedAt"])
        assert started - timedelta(seconds=1) <= downloaded_at <= datetime.now(UTC)
    # Both on the video's partition (key = video id), each download its own event.
    assert events[0]["partition"] == events[1]["partition"]
    assert events[0]["data"]["eventId"] != events[1]["data"]["eventId"]
    first, second = (datetime.fromisoformat(e["data"]["downloadedAt"]) for e in events)
    assert first <= second
