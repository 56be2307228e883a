"""Downloads are counted exactly: one per answer of the whole video (a 200, or a 206 from byte 0
to the end), none for a part of it (``bytes=0-0``, ``bytes=0-99``, a seek) or a 304, none
twice, even when they race for a video's first count."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import httpx
from vidmesh.devstack.samples import sample_mp4

from tests.e2e.fixtures_api import (
    download,
    downloads_of,
    sign_up,
    upload_video,
    wait_for_count,
)


def test_only_reads_of_the_whole_video_are_counted(gateway: httpx.Client) -> None:
    size = 64 * 1024
    account = sign_up(gateway)
    video_id = upload_video(gateway, account, sample_mp4(size, seed=21), "Counted")
    etag = gateway.get(
        f"/api/videos/{video_id}/download", headers=account.auth | {"Range": "bytes=5-9"}
    ).headers["etag"]
    counted: list[dict[str, str]] = [{}] * 5 + [{"Range": f"bytes=0-{size - 1}"}] * 3
    counted += [{"Range": "bytes=0-"}] * 2
    ignored: list[dict[str, str]] = [{"Range": "bytes=0-99"}] * 3
    ignored += [{"Range": "bytes=0-0"}] * 10 + [{"Range": "bytes=100-199"}] * 3
    ignored += [{"Range": "bytes=-50"}] * 2 + [{"If-None-Match": etag}] * 2
    requests = counted + ignored
    random.Random(21).shuffle(requests)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(
            pool.map(lambda headers: download(gateway, account, video_id, **headers), requests)
        )

    assert statuses == {
        HTTPStatus.OK: 5,
        HTTPStatus.PARTIAL_CONTENT: 3 + 2 + 3 + 10 + 3 + 2,
        HTTPStatus.NOT_MODIFIED: 2,
    }
    wait_for_count(gateway, video_id, len(counted))


def test_racing_whole_downloads_of_a_new_video_are_each_counted_once(
    gateway: httpx.Client,
) -> None:
    """The first count of the video is a race between twenty whole downloads (one row per
    video, no lost insert)."""
    account = sign_up(gateway)
    data = sample_mp4(2 * 1024 * 1024 + 99, seed=22)
    video_id = upload_video(gateway, account, data, "Raced")
    assert downloads_of(gateway, video_id) == 0

    def whole(_: int) -> bool:
        response = gateway.get(f"/api/videos/{video_id}/download", headers=account.auth)
        return response.status_code == HTTPStatus.OK and response.content == data

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(whole, range(20)))

    assert all(results)
    wait_for_count(gateway, video_id, 20)
