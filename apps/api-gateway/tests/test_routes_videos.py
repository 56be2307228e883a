"""/api/videos and /api/analytics over real HTTP, up to where the video service would be
called (it is not running here): tokens, ids, queries, and uploads refused early."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from vidmesh_api_gateway.main import build_service
from vidmesh_api_gateway.security import RefreshSessions, TokenCodec, TokenType
from vidmesh_api_gateway.settings import Settings

MultipartBuilder = Callable[..., tuple[bytes, str]]
VIDEO_ID = "0b1f8d9e-6a4c-4c8e-9a51-1f2e3d4c5b6a"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status
    body: dict[str, object] = answer.json()
    assert body["statusCode"] == status
    assert set(body) == {"statusCode", "message", "error"}
    return body


@pytest.fixture
async def access_token(sessions: RefreshSessions) -> str:
    """A live session's access token (a token of an unknown session is refused)."""
    return (await sessions.start(str(uuid.uuid4()))).access_token


def expired_access_token() -> str:
    codec = TokenCodec(
        access_secret="access-secret-for-tests-0123456789abcdef",
        refresh_secret="refresh-secret-for-tests-0123456789abcdef",
        access_ttl=60,
        refresh_ttl=60,
        clock=lambda: time.time() - 3600,
    )
    return codec.issue("u", TokenType.ACCESS, uuid.uuid4())[0]


def foreign_access_token() -> str:
    codec = TokenCodec(
        access_secret="o" * 40, refresh_secret="p" * 40, access_ttl=60, refresh_ttl=60
    )
    return codec.issue("u", TokenType.ACCESS, uuid.uuid4())[0]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": f"Bearer {expired_access_token()}"},
        {"Authorization": f"Bearer {foreign_access_token()}"},
    ],
    ids=["missing", "no-token", "basic", "garbage", "expired", "foreign-secret"],
)
async def test_download_without_a_valid_access_token_is_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await http.get(f"/api/videos/{VIDEO_ID}/download", headers=headers)
    assert_error(answer, 401)
    assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_download_with_a_refresh_token_is_401(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    answer = await http.get(f"/api/videos/{VIDEO_ID}/download", headers=bearer(pair.refresh_token))
    assert_error(answer, 401)


async def test_upload_with_a_refresh_token_is_401(
    http: httpx.AsyncClient, sessions: RefreshSessions, multipart: MultipartBuilder
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    body, content_type = multipart(("title", b"x"))
    headers = bearer(pair.refresh_token) | {"Content-Type": content_type}
    assert_error(await http.post("/api/videos", content=body, headers=headers), 401)


async def test_download_of_a_malformed_id_is_400(
    http: httpx.AsyncClient, access_token: str
) -> None:
    answer = await http.get("/api/videos/not-a-uuid/download", headers=bearer(access_token))
    assert_error(answer, 400)


async def test_metadata_of_a_malformed_id_is_400(http: httpx.AsyncClient) -> None:
    body = assert_error(await http.get("/api/videos/123"), 400)
    assert isinstance(body["message"], list)
    assert "path.video_id" in body["message"][0]


@pytest.mark.parametrize("query", ["page=0", "size=0", "size=101", "page=abc"])
async def test_list_with_a_bad_page_is_400(http: httpx.AsyncClient, query: str) -> None:
    assert_error(await http.get(f"/api/videos?{query}"), 400)


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten"])
async def test_top_with_a_bad_limit_is_400(http: httpx.AsyncClient, query: str) -> None:
    assert_error(await http.get(f"/api/analytics/top?{query}"), 400)


async def test_list_when_the_video_service_is_down_is_503(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/api/videos"), 503)


async def test_upload_that_is_not_multipart_is_400(
    http: httpx.AsyncClient, access_token: str
) -> None:
    answer = await http.post("/api/videos", json={"title": "x"}, headers=bearer(access_token))
    assert_error(answer, 400)


async def test_upload_of_a_file_that_is_not_a_video_is_415(
    http: httpx.AsyncClient, access_token: str, multipart: MultipartBuilder
) -> None:
    body, content_type = multipart(("title", b"Fake"), ("video", b"%PDF-1.7 " * 100, "a.mp4"))
    headers = bearer(access_token) | {"Content-Type": content_type}
    answer = await http.post("/api/videos", content=body, headers=headers)
    body_json = assert_error(answer, 415)
    assert body_json["message"] == "Only MP4 and WebM videos are accepted"


async def test_upload_without_a_file_is_400(
    http: httpx.AsyncClient, access_token: str, multipart: MultipartBuilder
) -> None:
    body, content_type = multipart(("title", b"No file"))
    headers = bearer(access_token) | {"Content-Type": content_type}
    assert_error(await http.post("/api/videos", content=body, headers=headers), 400)


async def test_upload_declaring_more_than_the_limit_is_413_before_it_is_read(
    http: httpx.AsyncClient, access_token: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):  # 4 MiB, over the 1 MiB limit of these tests
            yield b"\x00" * 65536

    headers = bearer(access_token) | {
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(64 * 65536),
    }
    answer = await http.post("/api/videos", content=body(), headers=headers)
    assert_error(answer, 413)


async def test_service_that_does_not_answer_in_time_is_504(
    settings: Settings, multipart: MultipartBuilder
) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # reads every request, answers none
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    service = build_service(
        settings.model_copy(update={"video_address": f"127.0.0.1:{port}", "request_timeout": 0.3})
    )
    await service.start()
    try:
        url = f"http://127.0.0.1:{service.transports[0].port}"  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=url) as client:
            assert_error(await client.get("/api/videos"), 504)
    finally:
        await service.stop()
        silent.close()
        await silent.wait_closed()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/videos/{VIDEO_ID}/url"),
        ("POST", "/api/videos/uploads"),
        ("GET", f"/api/videos/uploads/{VIDEO_ID}"),
        ("POST", f"/api/videos/uploads/{VIDEO_ID}/complete"),
        ("DELETE", f"/api/videos/uploads/{VIDEO_ID}"),
    ],
)
async def test_playback_and_direct_upload_routes_need_an_access_token(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_error(await http.request(method, path), 401)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/videos/not-a-uuid/url", None),
        ("GET", "/api/videos/uploads/not-a-uuid", None),
        ("DELETE", "/api/videos/uploads/not-a-uuid", None),
        ("POST", "/api/videos/uploads/not-a-uuid/complete", {"title": "Fine"}),
        ("POST", f"/api/videos/uploads/{VIDEO_ID}/complete", {"title": "x"}),
        ("POST", f"/api/videos/uploads/{VIDEO_ID}/complete", {"title": "Fine", "more": 1}),
        ("POST", "/api/videos/uploads", {"filename": "a.mp4", "size": -1}),
        ("POST", "/api/videos/uploads", {"filename": "a" * 256, "size": 10}),
        ("POST", "/api/videos/uploads", ["not", "an", "object"]),
    ],
)
async def test_garbage_to_playback_and_direct_upload_routes_is_400(
    http: httpx.AsyncClient, access_token: str, method: str, path: str, body: object
) -> None:
    answer = await http.request(method, path, json=body, headers=bearer(access_token))
    assert_error(answer, 400)


async def test_a_direct_upload_declaring_more_than_the_limit_is_413_before_any_call(
    http: httpx.AsyncClient, access_token: str
) -> None:
    # The video service is on a closed port here: a 413 means nothing was asked of it.
    body = {"filename": "a.mp4", "size": 1024 * 1024 + 1}
    answer = await http.post("/api/videos/uploads", json=body, headers=bearer(access_token))
    assert_error(answer, 413)


async def test_uploads_past_the_concurrency_limit_are_503_until_a_slot_frees(
    settings: Settings, sessions: RefreshSessions, multipart: MultipartBuilder
) -> None:
    service = build_service(settings.model_copy(update={"max_concurrent_uploads": 1}))
    await service.start()
    port = service.transports[0].port  # type: ignore[attr-defined]
    token = (await sessions.start(str(uuid.uuid4()))).access_token
    head = (
        f"POST /api/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nHeld\r\n'
    ).encode()
    try:
        # One upload in progress: its body has begun and the rest is still to come.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            body, content_type = multipart(("title", b"Second"), ("video", b"x", "a.mp4"))
            headers = bearer(token) | {"Content-Type": content_type}
            for _ in range(50):  # until the held upload has taken its slot
                answer = await http.post("/api/videos", content=body, headers=headers)
                if answer.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            message = assert_error(answer, 503)["message"]
            assert message == "Too many uploads in progress; try again shortly"
            assert answer.headers["retry-after"] == "1"
            writer.close()  # the held upload ends: its slot is free again
            await writer.wait_closed()
            for _ in range(50):
                answer = await http.post("/api/videos", content=body, headers=headers)
                if answer.status_code != 503:
                    break
                await asyncio.sleep(0.05)
            assert answer.status_code == 415  # past the slot: the file itself is refused
    finally:
        await service.stop()
