"""Memory stays bounded whatever the size of a video and however slowly clients read: a 200 MiB
video goes up through each upload path (the gateway's streamed form, and a direct upload whose
parts go straight to the store) and comes back whole while neither the gateway nor the video
service grows by more than 64 MiB; and 100 clients that never read an 8 MiB download grow the
gateway by less than 48 MiB (before the store streamed with backpressure: 232 MiB).

Its own system: the shared one keeps the default 100 MiB upload limit (test_video_errors.py
streams past it).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from vidmesh.devstack.samples import iter_sample_mp4, sample_mp4
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import Account, Sha256Tee, multipart, sign_up, upload_video
from tests.e2e.fixtures_systems import own_system

MiB = 1024 * 1024
VIDEO_SIZE = 200 * MiB
MAX_GROWTH = 64 * MiB
SLOW_READERS = 100
MAX_SLOW_READERS_GROWTH = 48 * MiB
"""About 330 KiB a stalled download on this machine (a 64 KiB socket write buffer, aiohttp's
reads from the store, the request's own state) and the allocator's slack under load: 33-42 MiB
measured; the finding was 232 MiB."""
WATCHED = ("api-gateway", "video")


@pytest.fixture(scope="module")
def roomy_system(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """A system whose upload limit (gateway and video service) takes a 200 MiB video."""
    limit = str(VIDEO_SIZE + MiB)
    env = {"VIDMESH_API_GATEWAY_MAX_UPLOAD_BYTES": limit, "VIDMESH_VIDEO_MAX_UPLOAD_BYTES": limit}
    with own_system(postgres_url, tmp_path_factory, "memory", extra_env=env) as handle:
        yield handle


class RssSampler:
    """Samples the resident set size of some processes every ``interval`` seconds in a thread;
    ``peak[pid]`` is the largest seen."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self._processes = [psutil.Process(pid) for pid in pids]
        self._interval = interval
        self._stop = threading.Event()
        self.peak = {process.pid: process.memory_info().rss for process in self._processes}
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for process in self._processes:
                rss = process.memory_info().rss
                self.peak[process.pid] = max(self.peak[process.pid], rss)


@pytest.mark.timeout(300)
def test_a_200_mib_video_round_trip_keeps_memory_flat(roomy_system: RunningSystem) -> None:
    pids = {name: roomy_system.pid(name) for name in WATCHED}
    with httpx.Client(base_url=roomy_system.gateway_url, timeout=120.0) as client:
        account = sign_up(client)
        # Warm up: every code path of an upload and a download has run once (imports, pools,
        # buffers), so the baseline is the idle size of a process that has served a video.
        warm = upload_video(client, account, sample_mp4(3 * MiB, seed=41), "Warm-up")
        assert len(client.get(f"/api/videos/{warm}/download", headers=account.auth).content)
        baseline = {name: psutil.Process(pid).memory_info().rss for name, pid in pids.items()}

        with RssSampler([pid for pid in pids.values() if pid is not None]) as sampler:
            sent = Sha256Tee(iter_sample_mp4(VIDEO_SIZE, seed=42))
            headers, body = multipart(sent, title="Two hundred MiB")
            created = client.post("/api/videos", content=body, headers=headers | account.auth)
            assert created.status_code == HTTPStatus.CREATED, created.text
            received = hashlib.sha256()
            size = 0
            url = f"/api/videos/{created.json()['id']}/download"
            with client.stream("GET", url, headers=account.auth) as response:
                assert response.status_code == HTTPStatus.OK
                for piece in response.iter_bytes():
                    received.update(piece)
                    size += len(piece)

    assert sent.size == size == VIDEO_SIZE
    assert received.hexdigest() == sent.hexdigest()
    growth = {name: sampler.peak[pid] - baseline[name] for name, pid in pids.items() if pid}
    assert set(growth) == set(WATCHED)
    for name, grown in growth.items():
        assert grown < MAX_GROWTH, f"{name} grew by {grown / MiB:.1f} MiB: {growth}"


def direct_upload(client: httpx.Client, account: Account, size: int, seed: int) -> tuple[str, str]:
    """Upload ``size`` sample bytes part by part straight to the store; (video id, SHA-256)."""
    grant = client.post(
        "/api/videos/uploads", json={"filename": "big.mp4", "size": size}, headers=account.auth
    ).json()
    part_size = grant["partSize"]
    sent = hashlib.sha256()
    buffer = bytearray()
    number = 1
    urls = {part["number"]: part["url"] for part in grant["parts"]}
    for piece in iter_sample_mp4(size, seed=seed):
        sent.update(piece)
        buffer += piece
        if len(buffer) >= part_size:
            part = bytes(buffer[:part_size])
            httpx.put(urls[number], content=part, timeout=120).raise_for_status()
            del buffer[:part_size]
            number += 1
    if buffer:
        httpx.put(urls[number], content=bytes(buffer), timeout=120).raise_for_status()
    done = client.post(
        f"/api/videos/uploads/{grant['uploadId']}/complete",
        json={"title": "Direct"},
        headers=account.auth,
    )
    assert done.status_code == HTTPStatus.CREATED, done.text
    return str(done.json()["id"]), sent.hexdigest()


@pytest.mark.timeout(300)
def test_a_200_mib_direct_upload_and_its_download_keep_memory_flat(
    roomy_system: RunningSystem,
) -> None:
    pids = {name: roomy_system.pid(name) for name in WATCHED}
    with httpx.Client(base_url=roomy_system.gateway_url, timeout=120.0) as client:
        account = sign_up(client)
        baseline = {name: psutil.Process(pid).memory_info().rss for name, pid in pids.items()}
        with RssSampler([pid for pid in pids.values() if pid is not None]) as sampler:
            video_id, digest = direct_upload(client, account, VIDEO_SIZE, seed=43)
            received = hashlib.sha256()
            url = f"/api/videos/{video_id}/download"
            with client.stream("GET", url, headers=account.auth) as response:
                assert response.status_code == HTTPStatus.OK
                for piece in response.iter_bytes():
                    received.update(piece)
    assert received.hexdigest() == digest
    for name, pid in pids.items():
        assert pid is not None
        grown = sampler.peak[pid] - baseline[name]
        assert grown < MAX_GROWTH, f"{name} grew by {grown / MiB:.1f} MiB"


@pytest.mark.timeout(300)
def test_clients_that_never_read_a_download_hold_little_gateway_memory(
    roomy_system: RunningSystem,
) -> None:
    gateway_pid = roomy_system.pid("api-gateway")
    assert gateway_pid is not None
    address = urlsplit(roomy_system.gateway_url)
    with httpx.Client(base_url=roomy_system.gateway_url, timeout=120.0) as client:
        account = sign_up(client)
        video_id = upload_video(client, account, sample_mp4(8 * MiB, seed=44), "Unread")
        assert len(client.get(f"/api/videos/{video_id}/download", headers=account.auth).content)
    baseline = psutil.Process(gateway_pid).memory_info().rss
    request = (
        f"GET /api/videos/{video_id}/download HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {account.auth['Authorization']}\r\n\r\n"
    ).encode()
    sockets = []
    try:
        with RssSampler([gateway_pid]) as sampler:
            for _ in range(SLOW_READERS):
                sock = socket.create_connection((address.hostname, address.port or 80))
                # A small receive window: the client's kernel cannot soak up the video either.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(request)
                sockets.append(sock)
            time.sleep(5)  # every download has filled what it may buffer, and waits
        grown = sampler.peak[gateway_pid] - baseline
    finally:
        for sock in sockets:
            sock.close()
    assert grown < MAX_SLOW_READERS_GROWTH, f"the gateway grew by {grown / MiB:.1f} MiB"
