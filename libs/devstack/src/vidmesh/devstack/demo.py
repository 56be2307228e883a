"""``vidmesh demo``: a newcomer's first minute against a running platform, over its public API.

Sign up a new user, upload a generated sample video, download it and compare the bytes, then
read the top list once the download has been counted (analytics counts it from a Kafka event,
so it may take a moment).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic import BaseModel, TypeAdapter
from vidmesh.devstack.samples import sample_mp4

DEFAULT_URL: Final = "http://127.0.0.1:3000"
SAMPLE_SIZE: Final = 1024 * 1024
TOP_LIMIT: Final = 10
PASSWORD: Final = "Vidmesh-demo-2024!"
"""Meets the gateway's rule: 10+ characters, a digit, a lower- and an upper-case letter, one
of ``!@#$%^&*``."""


class DemoFailed(RuntimeError):
    """A step answered something other than what the API promises."""


class SystemNotRunning(DemoFailed):
    """Nothing answers at the gateway's URL."""


class TopEntry(BaseModel):
    videoId: str  # noqa: N815 (the gateway's JSON field)
    title: str | None = None
    downloads: int


_TOP: Final = TypeAdapter(list[TopEntry])


@dataclass(frozen=True)
class DemoResult:
    email: str
    video_id: str
    size: int
    top: list[TopEntry]


Say = Callable[[str], None]


def run_demo(
    url: str = DEFAULT_URL,
    *,
    say: Say = print,
    size: int = SAMPLE_SIZE,
    count_timeout: float = 20.0,
) -> DemoResult:
    """Run the journey, telling each step to ``say``; DemoFailed when a step goes wrong."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        _check_running(client, url)
        email = f"demo-{uuid.uuid4().hex[:12]}@example.com"
        token = _sign_up(client, email, say)
        data = sample_mp4(size, seed=uuid.uuid4().int & 0xFFFF_FFFF)
        video_id = _upload(client, token, data, say)
        _download(client, token, video_id, data, say)
        top = _wait_counted(client, video_id, count_timeout, say)
    return DemoResult(email, video_id, size, top)


def _check_running(client: httpx.Client, url: str) -> None:
    try:
        client.get("/healthz", timeout=5.0)
    except httpx.TransportError as error:
        raise SystemNotRunning(
            f"nothing answers at {url} ({error.__class__.__name__}); start the platform with "
            "`uv run vidmesh up` (or pass --url)"
        ) from error


def _sign_up(client: httpx.Client, email: str, say: Say) -> str:
    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
    answer = _expect(client.post("/api/auth/signup", json=body), httpx.codes.CREATED, "sign up")
    say(f"signed up {email} (user id {answer['id']})")
    token: str = answer["accessToken"]
    return token


def _upload(client: httpx.Client, token: str, data: bytes, say: Say) -> str:
    title = f"vidmesh demo {time.strftime('%H:%M:%S')}"
    response = client.post(
        "/api/videos",
        headers={"Authorization": f"Bearer {token}"},
        data={"title": title},
        files={"video": ("vidmesh-demo.mp4", data, "video/mp4")},
    )
    answer = _expect(response, httpx.codes.CREATED, "upload")
    say(f"uploaded {title!r}: {len(data):,} bytes, video id {answer['id']}")
    video_id: str = answer["id"]
    return video_id


def _download(client: httpx.Client, token: str, video_id: str, data: bytes, say: Say) -> None:
    response = client.get(
        f"/api/videos/{video_id}/download", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != httpx.codes.OK:
        raise DemoFailed(f"download answered {response.status_code}: {response.text[:500]}")
    if response.content != data:
        raise DemoFailed(
            f"download returned {len(response.content):,} bytes that differ from the upload"
        )
    digest = hashlib.sha256(response.content).hexdigest()[:16]
    say(f"downloaded it: the same {len(data):,} bytes (sha256 {digest}...)")


def _wait_counted(client: httpx.Client, video_id: str, timeout: float, say: Say) -> list[TopEntry]:
    """The top list, once it counts our download (analytics works from a Kafka event)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/api/analytics/top", params={"limit": TOP_LIMIT})
        top = _TOP.validate_python(_expect(response, httpx.codes.OK, "top videos"))
        if any(entry.videoId == video_id and entry.downloads >= 1 for entry in top):
            say("analytics counted the download")
            return top
        if time.monotonic() > deadline:
            if len(top) >= TOP_LIMIT:  # a busy system: one download does not make the top
                say(f"the demo video is not among the {TOP_LIMIT} most downloaded")
                return top
            raise DemoFailed(f"the download was not counted in /api/analytics/top in {timeout} s")
        time.sleep(0.2)


def _expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise DemoFailed(f"{step} answered {response.status_code}: {response.text[:500]}")
    return response.json()
