"""What the end-to-end tests say to the gateway: accounts, streamed multipart uploads, the one
error shape, and the download count read back from ``/api/analytics/top``.

Plain functions on an ``httpx.Client`` (the ``gateway`` fixture), so each test reads as the
HTTP conversation it checks.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import httpx

PASSWORD: Final = "Correct-horse-9!"
MP4: Final = "video/mp4"
WEBM: Final = "video/webm"
TOP_LIMIT: Final = 100
"""The largest ``limit`` of ``/api/analytics/top``: every video the tests download fits."""


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(client: httpx.Client, email: str | None = None) -> Account:
    """A new account (201 expected), signed in."""
    email = email or unique_email()
    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
    response = client.post("/api/auth/signup", json=body)
    assert response.status_code == HTTPStatus.CREATED, response.text
    answer = response.json()
    return Account(answer["id"], email, answer["accessToken"], answer["refreshToken"])


def assert_error(response: httpx.Response, status: int) -> Any:
    """``response`` is ``status`` in the one error shape; returns its ``message``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"statusCode", "message", "error"}, body
    assert body["statusCode"] == status
    assert body["error"] == HTTPStatus(status).phrase
    assert isinstance(body["message"], str | list)
    assert body["message"]
    return body["message"]


# -- uploads ---------------------------------------------------------------------------------


class Sha256Tee:
    """Passes chunks through and hashes them, so a streamed upload's digest is known."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._hash = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def multipart(
    chunks: Iterable[bytes],
    *,
    title: str | None,
    filename: str = "clip.mp4",
    content_type: str = MP4,
) -> tuple[dict[str, str], Iterator[bytes]]:
    """A ``multipart/form-data`` body (``title``, then the ``video`` file from ``chunks``) as a
    generator, and its headers: httpx sends it chunked, never holding the whole file."""
    boundary = uuid.uuid4().hex
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def body() -> Iterator[bytes]:
        if title is not None:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
            ).encode()
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="video"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        yield from chunks
        yield f"\r\n--{boundary}--\r\n".encode()

    return headers, body()


def upload(
    client: httpx.Client,
    account: Account,
    data: bytes | Iterable[bytes],
    *,
    title: str | None = "A test video",
    filename: str = "clip.mp4",
    content_type: str = MP4,
) -> httpx.Response:
    """``POST /api/videos`` with the body streamed from ``data``."""
    chunks = [data] if isinstance(data, bytes) else data
    headers, body = multipart(chunks, title=title, filename=filename, content_type=content_type)
    return client.post("/api/videos", content=body, headers=headers | account.auth)


def upload_video(client: httpx.Client, account: Account, data: bytes, title: str) -> str:
    """Upload ``data`` (201 expected); the new video's id."""
    response = upload(client, account, data, title=title)
    assert response.status_code == HTTPStatus.CREATED, response.text
    video_id: str = response.json()["id"]
    return video_id


def video_total(client: httpx.Client) -> int:
    response = client.get("/api/videos", params={"size": 1})
    assert response.status_code == HTTPStatus.OK, response.text
    total: int = response.json()["total"]
    return total


# -- counting --------------------------------------------------------------------------------


def download(client: httpx.Client, account: Account, video_id: str, **headers: str) -> int:
    """Download the video (the body read whole); its status."""
    response = client.get(f"/api/videos/{video_id}/download", headers=account.auth | headers)
    return response.status_code


def downloads_of(client: httpx.Client, video_id: str) -> int:
    """The count ``/api/analytics/top`` shows for the video (0 when it is not listed)."""
    response = client.get("/api/analytics/top", params={"limit": TOP_LIMIT})
    assert response.status_code == HTTPStatus.OK, response.text
    counts = {item["videoId"]: item["downloads"] for item in response.json()}
    return int(counts.get(video_id, 0))


def wait_for_count(
    client: httpx.Client, video_id: str, expected: int, *, timeout: float = 30.0
) -> None:
    """Poll the top list until the video's count is ``expected`` (failing past ``timeout`` or
    on any count above it), then check it stays there (no late double count)."""
    deadline = time.monotonic() + timeout
    count = downloads_of(client, video_id)
    while count != expected:
        assert count < expected, f"counted {count} downloads, expected {expected}"
        assert time.monotonic() < deadline, f"counted {count} of {expected} within {timeout} s"
        time.sleep(0.2)
        count = downloads_of(client, video_id)
    settle = time.monotonic() + 2.0
    while time.monotonic() < settle:
        time.sleep(0.25)
        assert downloads_of(client, video_id) == expected, "a download was counted twice"
