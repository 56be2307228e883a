"""The video service on a real database and broker: ``database_url`` (migrated once per
session), ``serve`` (the whole service, built by ``build_service``, on a free port), ``client``
and sample videos."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
from vidmesh.contracts import video as contract
from vidmesh.contracts.video import CHUNK_SIZE
from vidmesh.kit.db import Database
from vidmesh.transport import Microservice, TcpClient, TcpServer

from vidmesh_video.main import build_service
from vidmesh_video.settings import Settings

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


@pytest.fixture
def serve(database_url: str, kafka_bootstrap: str) -> Serve:
    """``async with serve(max_upload_bytes=...) as client``: the service with those settings."""

    @contextlib.asynccontextmanager
    async def serving(**overrides: Any) -> AsyncIterator[TcpClient]:
        settings = Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            **overrides,
        )
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
    """The video patterns as a test calls them, over one client."""

    def __init__(self, client: TcpClient) -> None:
        self.client = client

    async def send_chunks(
        self, data: bytes, *, piece: int = CHUNK_SIZE, user_id: str = "user-1"
    ) -> str:
        """Start an upload and send ``data`` in pieces of ``piece`` bytes; returns its id."""
        ticket = await self.client.send(
            contract.UPLOAD_START, {"userId": user_id, "filename": "a.mp4"}
        )
        upload_id: str = ticket["uploadId"]
        for offset in range(0, len(data), piece):
            await self.chunk(upload_id, offset, data[offset : offset + piece])
        return upload_id

    async def chunk(self, upload_id: str, offset: int, data: bytes) -> Any:
        encoded = base64.b64encode(data).decode()
        payload = {"uploadId": upload_id, "offset": offset, "data": encoded}
        return await self.client.send(contract.UPLOAD_CHUNK, payload)

    async def finish(self, upload_id: str, title: str = "a video") -> dict[str, Any]:
        video: dict[str, Any] = await self.client.send(
            contract.UPLOAD_FINISH, {"uploadId": upload_id, "title": title}
        )
        return video

    async def upload(self, data: bytes, *, title: str = "a video", **kw: Any) -> dict[str, Any]:
        """A finished upload of ``data``: the video's metadata as the wire carries it."""
        return await self.finish(await self.send_chunks(data, **kw), title)

    async def read(self, video_id: str, **range_: Any) -> bytes:
        """The bytes a ``read`` streams, checked to arrive in order."""
        data = bytearray()
        async for chunk in self.client.stream(contract.READ, {"id": video_id, **range_}):
            assert chunk["offset"] == range_.get("start", 0) + len(data)
            data += base64.b64decode(chunk["data"])
        return bytes(data)


@pytest.fixture
def calls(client: TcpClient) -> VideoCalls:
    return VideoCalls(client)


@pytest.fixture
def make_calls() -> Callable[[TcpClient], VideoCalls]:
    """VideoCalls for a client of a service a test serves itself (``serve(...)``)."""
    return VideoCalls
