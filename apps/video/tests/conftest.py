"""The video service on a real database, broker and object store: ``database_url`` (migrated
once per session), ``s3`` (the settings of a bucket made ready once per session), ``serve``
(the whole service, built by ``build_service``, on a free port), ``client``, ``calls`` and
sample videos."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest
from vidmesh.contracts import video as contract
from vidmesh.kit.db import Database
from vidmesh.transport import Microservice, TcpClient, TcpServer

from vidmesh_video.main import build_service
from vidmesh_video.settings import Settings
from vidmesh_video.upgrade import prepare_store

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
WEBM_HEAD = bytes.fromhex(
    "1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810442858102"
)

Serve = Callable[..., contextlib.AbstractAsyncContextManager[TcpClient]]


def sample_mp4(size: int) -> bytes:
    """``size`` bytes that sniff as MP4 (an ``ftyp`` box, then noise)."""
    return (MP4_HEAD + os.urandom(max(size - len(MP4_HEAD), 0)))[:size]


def sample_webm(size: int) -> bytes:
    return (WEBM_HEAD + os.urandom(max(size - len(WEBM_HEAD), 0)))[:size]


@pytest.fixture
def mp4() -> Callable[[int], bytes]:
    return sample_mp4


@pytest.fixture
def webm() -> Callable[[int], bytes]:
    return sample_webm


@pytest.fixture(scope="session")
def database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_video")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(scope="session")
def s3(object_store: Any) -> dict[str, Any]:
    """The ``s3_*`` settings of one bucket for this session's video tests."""
    return {
        "s3_endpoint": object_store.endpoint,
        "s3_region": object_store.region,
        "s3_access_key_id": object_store.access_key_id,
        "s3_secret_access_key": object_store.secret_access_key,
        "s3_bucket": f"video-tests-{uuid.uuid4().hex[:12]}",
    }


def settings_of(database_url: str, kafka_bootstrap: str, s3: dict[str, Any], **kw: Any) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        tls_enabled=False,  # in-process, plain TCP; mutual TLS: vidmesh.transport's tests
        **(s3 | kw),
    )


@pytest.fixture(scope="session")
def ready_bucket(database_url: str, kafka_bootstrap: str, s3: dict[str, Any]) -> None:
    """The bucket created once, as ``migrate`` does."""
    asyncio.run(prepare_store(settings_of(database_url, kafka_bootstrap, s3)))


@pytest.fixture
def make_settings(kafka_bootstrap: str, s3: dict[str, Any]) -> Callable[..., Settings]:
    """``make_settings(database_url, **overrides)``: the service's settings on this store."""
    return lambda database_url, **kw: settings_of(database_url, kafka_bootstrap, s3, **kw)


@pytest.fixture
def store_settings(database_url: str, kafka_bootstrap: str, s3: dict[str, Any]) -> Settings:
    """Settings of the service the tests serve (for parts used on their own)."""
    return settings_of(database_url, kafka_bootstrap, s3)


@pytest.fixture
def serve(database_url: str, kafka_bootstrap: str, s3: dict[str, Any], ready_bucket: None) -> Serve:
    """``async with serve(max_upload_bytes=...) as client``: the service with those settings."""

    @contextlib.asynccontextmanager
    async def serving(**overrides: Any) -> AsyncIterator[TcpClient]:
        settings = settings_of(database_url, kafka_bootstrap, s3, **overrides)
        async with contextlib.AsyncExitStack() as stack:
            service = await stack.enter_async_context(build_service(settings))
            yield await stack.enter_async_context(TcpClient("127.0.0.1", port_of(service)))

    return serving


@pytest.fixture
async def client(serve: Serve) -> AsyncIterator[TcpClient]:
    async with serve() as client:
        yield client


def port_of(service: Microservice) -> int:
    return cast(TcpServer, service.transports[0]).port


class VideoCalls:
    """The video patterns as a test calls them, over one client, with the bytes PUT and read
    over HTTP as the gateway and browsers do."""

    def __init__(self, client: TcpClient, http: httpx.AsyncClient) -> None:
        self.client = client
        self.http = http

    async def start(self, size: int | None, *, user_id: str = "user-1") -> dict[str, Any]:
        request = {"userId": user_id, "filename": "a.mp4", "size": size}
        grant: dict[str, Any] = await self.client.send(contract.UPLOAD_START, request)
        return grant

    async def put(self, url: str, data: bytes) -> httpx.Response:
        return await self.http.put(url, content=data)

    async def send_parts(
        self, data: bytes, *, user_id: str = "user-1", declare: bool = True
    ) -> str:
        """Start an upload of ``data`` and PUT every part; returns its id."""
        grant = await self.start(len(data) if declare else None, user_id=user_id)
        part_size = grant["partSize"]
        urls = {part["number"]: part["url"] for part in grant["parts"]}
        for number, offset in enumerate(range(0, len(data), part_size), start=1):
            url = urls.get(number)
            if url is None:
                request = {"uploadId": grant["uploadId"], "userId": user_id, "number": number}
                url = (await self.client.send(contract.UPLOAD_PART, request))["url"]
            response = await self.put(url, data[offset : offset + part_size])
            assert response.status_code == 200, response.text
        return str(grant["uploadId"])

    async def finish(
        self, upload_id: str, title: str = "a video", *, user_id: str = "user-1"
    ) -> dict[str, Any]:
        request = {"uploadId": upload_id, "userId": user_id, "title": title}
        video: dict[str, Any] = await self.client.send(contract.UPLOAD_FINISH, request)
        return video

    async def upload(self, data: bytes, *, title: str = "a video", **kw: Any) -> dict[str, Any]:
        """A finished upload of ``data``: the video's metadata as the wire carries it."""
        return await self.finish(await self.send_parts(data, **kw), title)

    async def grant(self, video_id: str, **request: Any) -> dict[str, Any]:
        grant: dict[str, Any] = await self.client.send(
            contract.GRANT_READ, {"id": video_id, **request}
        )
        return grant

    async def read(self, video_id: str, **request: Any) -> bytes:
        """The bytes a read grant's URL gives (the range it resolved, if one was asked)."""
        grant = await self.grant(video_id, **request)
        headers = {}
        if request.get("range") is not None:
            headers["Range"] = f"bytes={grant['start']}-{grant['end'] - 1}"
        response = await self.http.get(grant["url"], headers=headers)
        assert response.status_code in (200, 206), response.text
        return response.content


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


@pytest.fixture
def calls(client: TcpClient, http: httpx.AsyncClient) -> VideoCalls:
    return VideoCalls(client, http)


@pytest.fixture
def make_calls(http: httpx.AsyncClient) -> Callable[[TcpClient], VideoCalls]:
    """VideoCalls for a client of a service a test serves itself (``serve(...)``)."""
    return lambda client: VideoCalls(client, http)
