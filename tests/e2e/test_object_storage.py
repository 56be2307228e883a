"""The bytes in the object store: playback URLs a plain HTTP client fetches with no token,
direct uploads (resumed after a cut connection, aborted, swept, guarded from other users), and
a store that is down (503, nothing half-stored).

The module's own system has short lifetimes (a playback URL lives 2 s, an upload idle for 2 s
is swept every second) and 5 MiB parts, so each case runs in seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from vidmesh.devstack.samples import sample_mp4
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import (
    Account,
    assert_error,
    sign_up,
    upload,
    upload_video,
    video_total,
    wait_for_count,
)
from tests.e2e.fixtures_systems import own_system

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture(scope="module")
def short_system(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    env = {
        "VIDMESH_VIDEO_PLAYBACK_URL_TTL": "2",
        "VIDMESH_VIDEO_UPLOAD_IDLE_TIMEOUT": "3",
        "VIDMESH_VIDEO_UPLOAD_SWEEP_INTERVAL": "1",
        "VIDMESH_VIDEO_S3_PART_SIZE": str(PART),
    }
    with own_system(postgres_url, tmp_path_factory, "store", extra_env=env) as handle:
        yield handle


@pytest.fixture
def api(short_system: RunningSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=short_system.gateway_url, timeout=60.0) as client:
        yield client


def playback(client: httpx.Client, account: Account, video_id: str) -> dict[str, Any]:
    response = client.get(f"/api/videos/{video_id}/url", headers=account.auth)
    assert response.status_code == HTTPStatus.OK, response.text
    answer: dict[str, Any] = response.json()
    return answer


def start_direct(
    client: httpx.Client, account: Account, size: int, filename: str = "big.mp4"
) -> dict[str, Any]:
    response = client.post(
        "/api/videos/uploads", json={"filename": filename, "size": size}, headers=account.auth
    )
    assert response.status_code == HTTPStatus.CREATED, response.text
    answer: dict[str, Any] = response.json()
    return answer


def put_part(url: str, data: bytes) -> httpx.Response:
    """A PUT straight to the store, as a browser does: no token, the URL is the grant."""
    return httpx.put(url, content=data, timeout=60.0)


# -- playback URLs --------------------------------------------------------------------------


def test_a_playback_url_plays_with_no_token_whole_and_ranged(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    data = sample_mp4(300_000, seed=61)
    video_id = upload_video(gateway, account, data, "Playable")

    answer = playback(gateway, account, video_id)

    assert set(answer) == {"url", "expiresAt"}
    whole = httpx.get(answer["url"])  # a plain client: no Authorization header at all
    assert whole.status_code == HTTPStatus.OK
    assert whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-disposition"].startswith("inline")
    ranged = httpx.get(answer["url"], headers={"Range": "bytes=1000-1999"})
    assert ranged.status_code == HTTPStatus.PARTIAL_CONTENT
    assert ranged.content == data[1000:2000]
    wait_for_count(gateway, video_id, 1)  # issuing the URL counted; the player's GETs do not


def test_a_playback_url_needs_an_access_token(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    video_id = upload_video(gateway, account, sample_mp4(10_000, seed=62), "Guarded")
    assert_error(gateway.get(f"/api/videos/{video_id}/url"), HTTPStatus.UNAUTHORIZED)
    missing = gateway.get(
        "/api/videos/00000000-0000-4000-8000-000000000000/url", headers=account.auth
    )
    assert_error(missing, HTTPStatus.NOT_FOUND)


def test_an_expired_or_altered_playback_url_is_refused_by_the_store(api: httpx.Client) -> None:
    account = sign_up(api)
    video_id = upload_video(api, account, sample_mp4(10_000, seed=63), "Short-lived")
    url = playback(api, account, video_id)["url"]
    altered = url.replace(video_id, video_id[:-1] + ("0" if video_id[-1] != "0" else "1"))
    assert httpx.get(altered).status_code == HTTPStatus.FORBIDDEN
    assert httpx.get(url).status_code == HTTPStatus.OK
    time.sleep(3.1)
    assert httpx.get(url).status_code == HTTPStatus.FORBIDDEN


# -- direct uploads -------------------------------------------------------------------------


def test_a_direct_upload_resumes_after_a_cut_connection(api: httpx.Client) -> None:
    account = sign_up(api)
    data = sample_mp4(2 * PART + 4321, seed=64)
    grant = start_direct(api, account, len(data))
    assert grant["partSize"] == PART
    assert [part["number"] for part in grant["parts"]] == [1, 2, 3]
    urls = {part["number"]: part["url"] for part in grant["parts"]}
    assert put_part(urls[1], data[:PART]).status_code == HTTPStatus.OK
    cut_off_put(urls[2], data[PART : 2 * PART])  # the connection drops half-way

    state = api.get(f"/api/videos/uploads/{grant['uploadId']}", headers=account.auth)
    assert state.status_code == HTTPStatus.OK, state.text
    assert [(p["number"], p["size"]) for p in state.json()["parts"]] == [(1, PART)]
    missing = state.json()["missing"]
    assert [part["number"] for part in missing] == [2, 3]
    early = api.post(
        f"/api/videos/uploads/{grant['uploadId']}/complete",
        json={"title": "Too early"},
        headers=account.auth,
    )
    assert_error(early, HTTPStatus.CONFLICT)
    for part in missing:
        offset = (part["number"] - 1) * PART
        assert put_part(part["url"], data[offset : offset + PART]).status_code == HTTPStatus.OK

    done = api.post(
        f"/api/videos/uploads/{grant['uploadId']}/complete",
        json={"title": "Resumed"},
        headers=account.auth,
    )

    assert done.status_code == HTTPStatus.CREATED, done.text
    assert done.json() == {"id": grant["uploadId"], "title": "Resumed"}
    back = api.get(f"/api/videos/{grant['uploadId']}/download", headers=account.auth)
    assert back.content == data


def cut_off_put(url: str, data: bytes) -> None:
    """Send the PUT's headers and half its body over a raw socket, then hang up."""
    parts = urlsplit(url)
    request = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as sock:
        sock.sendall(request + data[: len(data) // 2])
    time.sleep(0.3)


def test_a_small_direct_upload_is_one_put(api: httpx.Client) -> None:
    account = sign_up(api)
    data = sample_mp4(100_000, seed=65)
    grant = start_direct(api, account, len(data), "small.mp4")
    assert [part["number"] for part in grant["parts"]] == [1]
    assert put_part(grant["parts"][0]["url"], data).status_code == HTTPStatus.OK
    done = api.post(
        f"/api/videos/uploads/{grant['uploadId']}/complete",
        json={"title": "Small"},
        headers=account.auth,
    )
    assert done.status_code == HTTPStatus.CREATED, done.text
    metadata = api.get(f"/api/videos/{grant['uploadId']}").json()
    assert (metadata["size"], metadata["mimetype"]) == (len(data), "video/mp4")


def test_only_the_uploader_can_see_complete_or_abort_an_upload(api: httpx.Client) -> None:
    owner, other = sign_up(api), sign_up(api)
    data = sample_mp4(50_000, seed=66)
    grant = start_direct(api, owner, len(data))
    put_part(grant["parts"][0]["url"], data)
    path = f"/api/videos/uploads/{grant['uploadId']}"

    assert_error(api.get(path, headers=other.auth), HTTPStatus.NOT_FOUND)
    stolen = api.post(f"{path}/complete", json={"title": "Mine now"}, headers=other.auth)
    assert_error(stolen, HTTPStatus.NOT_FOUND)
    assert_error(api.delete(path, headers=other.auth), HTTPStatus.NOT_FOUND)
    assert_error(api.get(path), HTTPStatus.UNAUTHORIZED)

    done = api.post(f"{path}/complete", json={"title": "Still mine"}, headers=owner.auth)
    assert done.status_code == HTTPStatus.CREATED, done.text
    assert api.get(f"/api/videos/{grant['uploadId']}").json()["userId"] == owner.id


def test_an_aborted_upload_is_gone_from_the_store(api: httpx.Client) -> None:
    account = sign_up(api)
    data = sample_mp4(PART + 10, seed=67)
    grant = start_direct(api, account, len(data))
    put_part(grant["parts"][0]["url"], data[:PART])
    path = f"/api/videos/uploads/{grant['uploadId']}"

    assert api.delete(path, headers=account.auth).status_code == HTTPStatus.NO_CONTENT

    assert_error(api.get(path, headers=account.auth), HTTPStatus.NOT_FOUND)
    # The multipart upload no longer exists in the store: its part URLs lead nowhere.
    assert put_part(grant["parts"][1]["url"], data[PART:]).status_code == HTTPStatus.NOT_FOUND


def test_an_abandoned_upload_is_swept(api: httpx.Client) -> None:
    account = sign_up(api)
    data = sample_mp4(PART + 10, seed=68)
    grant = start_direct(api, account, len(data))
    put_part(grant["parts"][0]["url"], data[:PART])
    path = f"/api/videos/uploads/{grant['uploadId']}"

    # No sign of life (a status would be one) for longer than the idle timeout, then a sweep.
    time.sleep(3 + 1 + 2)
    assert_error(api.get(path, headers=account.auth), HTTPStatus.NOT_FOUND)
    assert put_part(grant["parts"][1]["url"], data[PART:]).status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"filename": "a.mp4"}, HTTPStatus.BAD_REQUEST),
        ({"filename": "a.mp4", "size": 0}, HTTPStatus.BAD_REQUEST),
        ({"filename": "", "size": 10}, HTTPStatus.BAD_REQUEST),
        ({"filename": "a.mp4", "size": 10, "extra": 1}, HTTPStatus.BAD_REQUEST),
        ({"filename": "a.mp4", "size": 101 * MiB}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    ],
)
def test_a_bad_direct_upload_request_is_refused(
    gateway: httpx.Client, body: dict[str, Any], status: int
) -> None:
    account = sign_up(gateway)
    assert_error(gateway.post("/api/videos/uploads", json=body, headers=account.auth), status)


def test_a_direct_upload_of_another_type_is_refused_and_deleted(api: httpx.Client) -> None:
    account = sign_up(api)
    data = b"<html>not a video</html>" * 100
    grant = start_direct(api, account, len(data), "page.mp4")
    put_part(grant["parts"][0]["url"], data)
    path = f"/api/videos/uploads/{grant['uploadId']}"
    done = api.post(f"{path}/complete", json={"title": "Nope"}, headers=account.auth)
    assert_error(done, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    assert_error(api.get(path, headers=account.auth), HTTPStatus.NOT_FOUND)
    assert_error(api.get(f"/api/videos/{grant['uploadId']}"), HTTPStatus.NOT_FOUND)


# -- a store that is down -------------------------------------------------------------------


def test_a_store_that_is_down_gives_503_and_nothing_half_stored(
    short_system: RunningSystem, api: httpx.Client
) -> None:
    account = sign_up(api)
    video_id = upload_video(api, account, sample_mp4(20_000, seed=69), "Before the outage")
    total = video_total(api)
    short_system.stop_object_store()
    try:
        refused = upload(api, account, sample_mp4(20_000, seed=70), title="During the outage")
        assert_error(refused, HTTPStatus.SERVICE_UNAVAILABLE)
        read = api.get(f"/api/videos/{video_id}/download", headers=account.auth)
        assert_error(read, HTTPStatus.SERVICE_UNAVAILABLE)
        # A multipart upload is created in the store at once (a single PUT's grant is not).
        direct = api.post(
            "/api/videos/uploads",
            json={"filename": "a.mp4", "size": 2 * PART},
            headers=account.auth,
        )
        assert_error(direct, HTTPStatus.SERVICE_UNAVAILABLE)
        assert video_total(api) == total
    finally:
        short_system.start_object_store()
    back = api.get(f"/api/videos/{video_id}/download", headers=account.auth)
    assert back.status_code == HTTPStatus.OK
    assert video_total(api) == total
