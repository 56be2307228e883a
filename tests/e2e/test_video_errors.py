"""Uploads refused (too large, wrong type, incomplete), ids unknown or malformed, bad paging, and
the download's HTTP semantics: Range (206, suffix, 416), ETag and If-None-Match (304)."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass
from http import HTTPStatus

import httpx
import pytest
from vidmesh.devstack.samples import iter_sample_mp4, sample_mp4
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import (
    Account,
    assert_error,
    sign_up,
    upload,
    upload_video,
    video_total,
)

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""The gateway's and video service's default limit, which the shared ``system`` keeps."""


@dataclass(frozen=True)
class Stored:
    account: Account
    id: str
    data: bytes


@pytest.fixture(scope="module")
def stored(system: RunningSystem) -> Stored:
    """One uploaded video of a little over two download windows."""
    data = sample_mp4(2 * 1024 * 1024 + 333, seed=11)
    with httpx.Client(base_url=system.gateway_url, timeout=30.0) as client:
        account = sign_up(client)
        return Stored(account, upload_video(client, account, data, "Ranges"), data)


def _download(gateway: httpx.Client, stored: Stored, **headers: str) -> httpx.Response:
    return gateway.get(f"/api/videos/{stored.id}/download", headers=stored.account.auth | headers)


# -- uploads refused ------------------------------------------------------------------------


def test_an_oversized_upload_is_refused_and_nothing_is_stored(
    gateway: httpx.Client, stored: Stored
) -> None:
    """Streamed (chunked, no Content-Length), so the limit is enforced while reading."""
    before = video_total(gateway)
    chunks = iter_sample_mp4(DEFAULT_MAX_UPLOAD_BYTES + 1, seed=12)
    response = upload(gateway, stored.account, chunks, title="Too large")
    assert_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    assert video_total(gateway) == before


def test_an_upload_declaring_an_oversized_length_is_refused_up_front(
    system: RunningSystem, gateway: httpx.Client, stored: Stored
) -> None:
    """A Content-Length past the limit is answered from the headers, before the body is read
    (a raw socket: an HTTP client would insist on sending the whole declared body first)."""
    before = video_total(gateway)
    url = httpx.URL(system.gateway_url)
    assert url.port is not None
    head = (
        f"POST /api/videos HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {stored.account.access_token}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {2 * DEFAULT_MAX_UPLOAD_BYTES}\r\n\r\n"
    )
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"--b\r\n")
        status, body = _read_response(sock)
    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert json.loads(body)["statusCode"] == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert video_total(gateway) == before


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response with a Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received:
        piece = sock.recv(65536)
        assert piece, f"connection closed after {received!r}"
        received += piece
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:])
    length = int({k.strip().lower(): v for k, v in fields.items()}["content-length"])
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, "connection closed mid-body"
        body += piece
    return int(lines[0].split()[1]), body


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n" + bytes(4096), b"just some text, certainly not a video\n" * 50],
    ids=["png", "text"],
)
def test_an_upload_of_another_type_is_unsupported_and_nothing_is_stored(
    gateway: httpx.Client, stored: Stored, data: bytes
) -> None:
    before = video_total(gateway)
    # The client claims video/mp4 and a .mp4 name: only the bytes count.
    response = upload(gateway, stored.account, data, title="Not a video")
    assert_error(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    assert video_total(gateway) == before


def test_an_upload_without_a_title_is_bad_request(gateway: httpx.Client, stored: Stored) -> None:
    before = video_total(gateway)
    response = upload(gateway, stored.account, sample_mp4(4096), title=None)
    assert_error(response, HTTPStatus.BAD_REQUEST)
    assert video_total(gateway) == before


@pytest.mark.parametrize("title", ["x", "y" * 101], ids=["too-short", "too-long"])
def test_an_upload_with_a_bad_title_is_bad_request(
    gateway: httpx.Client, stored: Stored, title: str
) -> None:
    before = video_total(gateway)
    response = upload(gateway, stored.account, sample_mp4(4096), title=title)
    assert_error(response, HTTPStatus.BAD_REQUEST)
    assert video_total(gateway) == before


def test_an_upload_without_a_file_is_bad_request(gateway: httpx.Client, stored: Stored) -> None:
    response = gateway.post(
        "/api/videos",
        files={"other": ("x.txt", b"x")},
        data={"title": "No file"},
        headers=stored.account.auth,
    )
    assert_error(response, HTTPStatus.BAD_REQUEST)


def test_an_empty_file_is_bad_request(gateway: httpx.Client, stored: Stored) -> None:
    assert_error(upload(gateway, stored.account, b"", title="Empty"), HTTPStatus.BAD_REQUEST)


def test_an_upload_that_is_not_multipart_is_bad_request(
    gateway: httpx.Client, stored: Stored
) -> None:
    response = gateway.post("/api/videos", json={"title": "json"}, headers=stored.account.auth)
    assert_error(response, HTTPStatus.BAD_REQUEST)


def test_a_truncated_multipart_body_is_bad_request(gateway: httpx.Client, stored: Stored) -> None:
    before = video_total(gateway)
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nCut\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'
    ).encode() + sample_mp4(8192)
    response = gateway.post(
        "/api/videos",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"} | stored.account.auth,
    )
    assert_error(response, HTTPStatus.BAD_REQUEST)
    assert video_total(gateway) == before


# -- ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/download"], ids=["metadata", "download"])
def test_an_unknown_video_is_not_found(gateway: httpx.Client, stored: Stored, suffix: str) -> None:
    response = gateway.get(f"/api/videos/{uuid.uuid4()}{suffix}", headers=stored.account.auth)
    assert_error(response, HTTPStatus.NOT_FOUND)


@pytest.mark.parametrize("video_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
@pytest.mark.parametrize("suffix", ["", "/download"], ids=["metadata", "download"])
def test_a_malformed_video_id_is_bad_request(
    gateway: httpx.Client, stored: Stored, suffix: str, video_id: str
) -> None:
    response = gateway.get(f"/api/videos/{video_id}{suffix}", headers=stored.account.auth)
    assert_error(response, HTTPStatus.BAD_REQUEST)


# -- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": "one"}, {"size": 0}, {"size": 101}, {"size": -1}],
    ids=["page-zero", "page-text", "size-zero", "size-too-large", "size-negative"],
)
def test_a_bad_page_is_bad_request(gateway: httpx.Client, params: dict[str, str | int]) -> None:
    assert_error(gateway.get("/api/videos", params=params), HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_a_bad_top_limit_is_bad_request(gateway: httpx.Client, limit: str) -> None:
    response = gateway.get("/api/analytics/top", params={"limit": limit})
    assert_error(response, HTTPStatus.BAD_REQUEST)


def test_a_page_past_the_end_is_empty(gateway: httpx.Client, stored: Stored) -> None:
    response = gateway.get("/api/videos", params={"page": 100_000, "size": 100})
    assert response.status_code == HTTPStatus.OK
    assert response.json()["items"] == []


# -- ranges and validators ------------------------------------------------------------------


def test_a_range_is_partial_content(gateway: httpx.Client, stored: Stored) -> None:
    size = len(stored.data)
    response = _download(gateway, stored, Range="bytes=100-1999")
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert response.headers["content-range"] == f"bytes 100-1999/{size}"
    assert response.headers["content-length"] == "1900"
    assert response.content == stored.data[100:2000]


def test_a_range_across_read_windows_is_whole(gateway: httpx.Client, stored: Stored) -> None:
    start, end = 1024 * 1024 - 10, 2 * 1024 * 1024 + 10
    response = _download(gateway, stored, Range=f"bytes={start}-{end}")
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert response.content == stored.data[start : end + 1]


def test_an_open_ended_range_runs_to_the_end(gateway: httpx.Client, stored: Stored) -> None:
    size = len(stored.data)
    response = _download(gateway, stored, Range=f"bytes={size - 7}-")
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert response.headers["content-range"] == f"bytes {size - 7}-{size - 1}/{size}"
    assert response.content == stored.data[-7:]


def test_a_suffix_range_is_the_last_bytes(gateway: httpx.Client, stored: Stored) -> None:
    size = len(stored.data)
    response = _download(gateway, stored, Range="bytes=-500")
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert response.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    assert response.content == stored.data[-500:]


def test_a_range_past_the_end_is_clamped(gateway: httpx.Client, stored: Stored) -> None:
    size = len(stored.data)
    response = _download(gateway, stored, Range=f"bytes={size - 3}-{size + 1000}")
    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert response.content == stored.data[-3:]


@pytest.mark.parametrize("start", ["size", "size+1000"])
def test_a_range_starting_past_the_end_is_not_satisfiable(
    gateway: httpx.Client, stored: Stored, start: str
) -> None:
    size = len(stored.data)
    first = size if start == "size" else size + 1000
    response = _download(gateway, stored, Range=f"bytes={first}-")
    assert_error(response, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
    assert response.headers["content-range"] == f"bytes */{size}"


def test_a_range_of_another_unit_is_ignored(gateway: httpx.Client, stored: Stored) -> None:
    response = _download(gateway, stored, Range="items=0-3")
    assert response.status_code == HTTPStatus.OK
    assert response.content == stored.data


def test_a_matching_if_none_match_is_not_modified(gateway: httpx.Client, stored: Stored) -> None:
    etag = _download(gateway, stored, Range="bytes=-1").headers["etag"]
    response = _download(gateway, stored, **{"If-None-Match": etag})
    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response.content == b""
    assert response.headers["etag"] == etag


def test_a_stale_if_none_match_gets_the_bytes(gateway: httpx.Client, stored: Stored) -> None:
    response = _download(gateway, stored, **{"If-None-Match": '"not-the-etag"'})
    assert response.status_code == HTTPStatus.OK
    assert response.content == stored.data


def test_a_stale_if_range_gets_the_whole_video(gateway: httpx.Client, stored: Stored) -> None:
    response = _download(gateway, stored, Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert response.status_code == HTTPStatus.OK
    assert response.content == stored.data
