"""The whole journey through the gateway: sign up, sign in, upload MP4 and WebM, browse, download
the same bytes, refresh, sign out, and see both videos in the top list with their titles."""

from __future__ import annotations

from http import HTTPStatus

import httpx
from vidmesh.devstack.samples import sample_mp4, sample_webm

from tests.e2e.fixtures_api import (
    MP4,
    PASSWORD,
    TOP_LIMIT,
    WEBM,
    bearer,
    sign_up,
    unique_email,
    upload,
    wait_for_count,
)


def test_a_user_uploads_downloads_and_sees_the_top_list(gateway: httpx.Client) -> None:
    email = unique_email("journey")
    account = sign_up(gateway, email)

    signin = gateway.post("/api/auth/signin", json={"email": email, "password": PASSWORD})
    assert signin.status_code == HTTPStatus.CREATED, signin.text
    tokens = signin.json()
    assert set(tokens) == {"accessToken", "refreshToken"}
    access = bearer(tokens["accessToken"])

    mp4 = sample_mp4(3 * 1024 * 1024 + 17, seed=1)
    webm = sample_webm(200 * 1024 + 3, seed=2)
    uploads = {}
    for data, title, filename, mimetype in (
        (mp4, "Journey MP4", "journey.mp4", MP4),
        # The client's header lies: the type comes from the bytes.
        (webm, "Journey WebM", "journey.webm", "application/octet-stream"),
    ):
        created = gateway.post(
            "/api/videos",
            files={"video": (filename, data, mimetype)},
            data={"title": title},
            headers=access,
        )
        assert created.status_code == HTTPStatus.CREATED, created.text
        assert created.json()["title"] == title
        uploads[created.json()["id"]] = (data, title, filename)
    mp4_id, webm_id = uploads

    listed = gateway.get("/api/videos", params={"page": 1, "size": 100})
    assert listed.status_code == HTTPStatus.OK, listed.text
    page = listed.json()
    assert page["page"] == 1
    assert page["size"] == 100
    assert page["total"] >= 2
    assert {mp4_id, webm_id} <= {item["id"] for item in page["items"]}

    for video_id, mimetype in ((mp4_id, MP4), (webm_id, WEBM)):
        data, title, filename = uploads[video_id]
        metadata = gateway.get(f"/api/videos/{video_id}")
        assert metadata.status_code == HTTPStatus.OK, metadata.text
        found = metadata.json()
        assert set(found) == {"id", "title", "mimetype", "size", "userId", "createdAt"}
        assert (found["id"], found["title"], found["mimetype"]) == (video_id, title, mimetype)
        assert (found["size"], found["userId"]) == (len(data), account.id)

        downloaded = gateway.get(f"/api/videos/{video_id}/download", headers=access)
        assert downloaded.status_code == HTTPStatus.OK, downloaded.text
        assert downloaded.content == data
        assert downloaded.headers["content-type"] == mimetype
        assert downloaded.headers["content-length"] == str(len(data))
        assert downloaded.headers["accept-ranges"] == "bytes"
        assert downloaded.headers["etag"].startswith('"')
        disposition = downloaded.headers["content-disposition"]
        assert disposition == f'attachment; filename="{filename}"'

    refreshed = gateway.post("/api/auth/refresh", headers=bearer(tokens["refreshToken"]))
    assert refreshed.status_code == HTTPStatus.CREATED, refreshed.text
    pair = refreshed.json()
    assert set(pair) == {"accessToken", "refreshToken"}
    assert pair["refreshToken"] != tokens["refreshToken"]
    again = gateway.get(f"/api/videos/{mp4_id}", headers=bearer(pair["accessToken"]))
    assert again.status_code == HTTPStatus.OK

    signout = gateway.post("/api/auth/signout", headers=bearer(pair["refreshToken"]))
    assert signout.status_code == HTTPStatus.NO_CONTENT
    assert signout.content == b""

    for video_id in (mp4_id, webm_id):
        wait_for_count(gateway, video_id, 1)
    top = gateway.get("/api/analytics/top", params={"limit": TOP_LIMIT})
    assert top.status_code == HTTPStatus.OK
    entries = {item["videoId"]: item for item in top.json()}
    for video_id, (_, title, _) in uploads.items():
        assert entries[video_id] == {"videoId": video_id, "title": title, "downloads": 1}


def test_a_streamed_multipart_upload_is_stored_whole(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    data = sample_mp4(2 * 1024 * 1024 + 5, seed=3)
    pieces = [data[i : i + 65_537] for i in range(0, len(data), 65_537)]
    created = upload(gateway, account, pieces, title="Streamed")
    assert created.status_code == HTTPStatus.CREATED, created.text
    video_id = created.json()["id"]
    downloaded = gateway.get(f"/api/videos/{video_id}/download", headers=account.auth)
    assert downloaded.content == data
