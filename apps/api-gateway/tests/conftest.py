"""Fixtures of the api-gateway tests: its migrated database, settings that point the three
services at closed ports (these tests need no other service), and the gateway itself served
over real HTTP on port 0."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from vidmesh.kit.db import Database

from vidmesh_api_gateway.main import build_service
from vidmesh_api_gateway.security import RefreshSessions, TokenCodec
from vidmesh_api_gateway.settings import Settings

ACCESS_SECRET = "access-secret-for-tests-0123456789abcdef"
REFRESH_SECRET = "refresh-secret-for-tests-0123456789abcdef"

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
WEBM_HEAD = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"
)

MultipartBuilder = Callable[..., tuple[bytes, str]]


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_api_gateway")


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(
        access_secret=ACCESS_SECRET,
        refresh_secret=REFRESH_SECRET,
        access_ttl=900,
        refresh_ttl=3600,
    )


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    yield database
    await database.close()


@pytest.fixture
def sessions(database: Database, codec: TokenCodec) -> RefreshSessions:
    return RefreshSessions(database, codec)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        port=0,
        database_url=database_url,
        jwt_access_secret=ACCESS_SECRET,
        jwt_refresh_secret=REFRESH_SECRET,
        refresh_token_ttl_seconds=3600,
        user_address=f"127.0.0.1:{closed_port()}",
        video_address=f"127.0.0.1:{closed_port()}",
        analytics_address=f"127.0.0.1:{closed_port()}",
        kafka_bootstrap=f"127.0.0.1:{closed_port()}",
        max_upload_bytes=1024 * 1024,
        request_timeout=2.0,
        database_pool_size=2,
        tls_enabled=False,  # the services here are stand-ins on plain TCP
    )


@pytest.fixture
async def gateway_url(settings: Settings) -> AsyncIterator[str]:
    """The gateway (build_service, as ``serve`` runs it) on an ephemeral port."""
    service = build_service(settings)
    await service.start()
    port = service.transports[0].port  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await service.stop()


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def multipart() -> MultipartBuilder:
    """``multipart(("title", b"..."), ("video", b"...", "a.mp4"))`` -> (body, content type)."""

    def build(*parts: tuple[str, bytes] | tuple[str, bytes, str]) -> tuple[bytes, str]:
        boundary = "vidmesh-test-boundary-7f3a"
        body = b""
        for part in parts:
            name, data = part[0], part[1]
            disposition = f'form-data; name="{name}"'
            if len(part) == 3:
                disposition += f'; filename="{part[2]}"'
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
            if len(part) == 3:
                body += b"Content-Type: application/octet-stream\r\n"
            body += b"\r\n" + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"

    return build


@pytest.fixture
def mp4_head() -> bytes:
    """The first bytes of an MP4 file (an ftyp box, then a free box)."""
    return MP4_HEAD


@pytest.fixture
def webm_head() -> bytes:
    """The first bytes of a WebM file (its EBML header)."""
    return WEBM_HEAD
