"""Request body caps (body_limits.py) on the served gateway: 413 in the one error shape before
anything is parsed, whether the length is declared or the body is chunked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus

import httpx

from vidmesh_api_gateway.settings import Settings


async def chunks(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes of a JSON-looking body, sent chunked (no Content-Length)."""
    yield b'{"email": "'
    for _ in range(size // 1024):
        yield b"a" * 1024


def assert_413(answer: httpx.Response, cap: int) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.json() == {
        "statusCode": 413,
        "message": f"The request body is larger than {cap} bytes",
        "error": HTTPStatus(413).phrase,
    }


async def test_a_declared_auth_body_over_the_cap_is_413(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    body = b'{"email": "' + b"a" * 10_000 + b'"}'
    answer = await http.post("/api/auth/signin", content=body)
    assert_413(answer, settings.max_auth_body_bytes)


async def test_a_chunked_auth_body_over_the_cap_is_413(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    answer = await http.post("/api/auth/signin", content=chunks(64 * 1024))
    assert_413(answer, settings.max_auth_body_bytes)


async def test_another_route_has_the_larger_cap(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    under = await http.post("/api/videos/uploads", content=b"x" * 10_000)
    assert under.status_code == 401  # past the cap check, refused for want of a token
    over = await http.post("/api/videos/uploads", content=chunks(128 * 1024))
    assert_413(over, settings.max_body_bytes)


async def test_a_small_auth_body_reaches_its_route(http: httpx.AsyncClient) -> None:
    answer = await http.post("/api/auth/signin", json={"email": "x"})
    assert answer.status_code == 400  # validation, not the cap


async def test_the_streamed_upload_keeps_its_own_limit(http: httpx.AsyncClient) -> None:
    answer = await http.post("/api/videos", content=b"x" * 100_000)
    assert answer.status_code == 401  # not 413: the upload's limit is max_upload_bytes
