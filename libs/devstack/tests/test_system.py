"""The whole platform: secrets kept, data and counts surviving a restart, a killed service coming
back, the broker and the object store restarted on their ports."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from vidmesh.devstack.databases import drop_database
from vidmesh.devstack.s3 import bucket_name, s3_client
from vidmesh.devstack.samples import sample_mp4
from vidmesh.devstack.services import SERVICES, Ports, load_secrets
from vidmesh.devstack.supervisor import ChildState
from vidmesh.devstack.system import RunningSystem, StartupError, System, running_system

PASSWORD = "Correct-horse-9!"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's ``tmp_path``: every new pytest session on the machine resets
    ``/tmp/pytest-of-<user>`` to mode 700, which locks the embedded PostgreSQL's own user out."""
    with tempfile.TemporaryDirectory(prefix="vidmesh-test-") as folder:
        yield Path(folder)


def test_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_secrets(path, ["user-service"])
    again = load_secrets(path, ["user-service", "video-service"])
    assert again.passwords["user-service"] == first.passwords["user-service"]
    assert again.jwt_access_secret == first.jwt_access_secret != first.jwt_refresh_secret
    assert again.s3_access_key_id == first.s3_access_key_id
    assert again.s3_secret_access_key == first.s3_secret_access_key != ""
    assert set(json.loads(path.read_text())["passwords"]) == {"user-service", "video-service"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_prefixed_system_has_a_bucket_of_its_own(tmp_path: Path) -> None:
    assert System(tmp_path, database_prefix="e2e_1a2b3c4d_").s3_bucket == (
        "e2e-1a2b3c4d-vidmesh-videos"
    )
    assert System(tmp_path).s3_bucket == "vidmesh-videos"


def test_ports_from_a_base_put_the_gateway_first() -> None:
    ports = Ports.from_base(4000)
    assert [ports.of(service.name) for service in SERVICES] == [4001, 4002, 4003, 4000]


def _sign_up(client: httpx.Client, email: str) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
    response = client.post("/api/auth/signup", json=body)
    assert response.status_code == httpx.codes.CREATED, response.text
    answer: dict[str, str] = response.json()
    return answer


def _sign_in(client: httpx.Client, email: str) -> httpx.Response:
    return client.post("/api/auth/signin", json={"email": email, "password": PASSWORD})


def test_users_and_tokens_survive_a_restart(data_dir: Path) -> None:
    email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
    with (
        running_system(data_dir) as system,
        httpx.Client(base_url=system.gateway_url, timeout=30) as client,
    ):
        tokens = _sign_up(client, email)
    with (
        running_system(data_dir) as system,
        httpx.Client(base_url=system.gateway_url, timeout=30) as client,
    ):
        assert _sign_in(client, email).status_code == httpx.codes.CREATED
        refreshed = client.post(
            "/api/auth/refresh", headers={"Authorization": f"Bearer {tokens['refreshToken']}"}
        )
        assert refreshed.status_code == httpx.codes.CREATED, refreshed.text


def _upload(client: httpx.Client, token: str) -> str:
    files = {"video": ("kept.mp4", sample_mp4(4096), "video/mp4")}
    response = client.post(
        "/api/videos",
        data={"title": "kept"},
        files=files,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == httpx.codes.CREATED, response.text
    video_id: str = response.json()["id"]
    return video_id


def _download(client: httpx.Client, token: str, video_id: str, times: int) -> None:
    for _ in range(times):
        response = client.get(
            f"/api/videos/{video_id}/download", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == httpx.codes.OK, response.text


def _downloads(client: httpx.Client, video_id: str) -> int:
    for entry in client.get("/api/analytics/top", params={"limit": 100}).json():
        if entry["videoId"] == video_id:
            return int(entry["downloads"])
    return 0


def _wait_for_downloads(client: httpx.Client, video_id: str, expected: int) -> int:
    deadline = time.monotonic() + 60
    while (counted := _downloads(client, video_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.25)
    return counted


def test_a_restart_of_the_whole_system_loses_no_download_and_counts_none_twice(
    data_dir: Path,
) -> None:
    with (
        running_system(data_dir) as system,
        httpx.Client(base_url=system.gateway_url, timeout=30) as client,
    ):
        token = _sign_up(client, f"count-{uuid.uuid4().hex[:8]}@example.com")["accessToken"]
        video_id = _upload(client, token)
        _download(client, token, video_id, 2)
        assert _wait_for_downloads(client, video_id, 2) == 2  # published and counted
        system.stop_broker()
        _download(client, token, video_id, 1)  # its event waits in the outbox
    # A new, empty broker: the relay publishes the third event and, again, the two counted ones.
    with (
        running_system(data_dir) as system,
        httpx.Client(base_url=system.gateway_url, timeout=30) as client,
    ):
        _download(client, token, video_id, 2)
        assert _wait_for_downloads(client, video_id, 5) == 5
        time.sleep(2)  # the republished events change nothing later either
        assert _downloads(client, video_id) == 5


@pytest.fixture(scope="module")
def system(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    prefix = f"test_{uuid.uuid4().hex[:8]}_"
    data_dir = tmp_path_factory.mktemp("system")
    try:
        with running_system(data_dir, postgres_url=postgres_url, database_prefix=prefix) as handle:
            yield handle
    finally:
        for service in SERVICES:
            asyncio.run(drop_database(postgres_url, prefix + service.database, role=True))


def test_every_service_is_ready_on_its_port(system: RunningSystem) -> None:
    for status in system.services():
        assert status.state is ChildState.READY
        assert status.pid is not None
        with socket.create_connection(("127.0.0.1", status.port), timeout=2):
            pass


def test_a_killed_service_is_restarted(system: RunningSystem) -> None:
    before = system.restarts("user")
    old_pid = system.kill("user", signal.SIGKILL)
    system.wait_ready("user", timeout=60)
    assert system.pid("user") not in (None, old_pid)
    assert system.restarts("user") == before + 1
    with httpx.Client(base_url=system.gateway_url, timeout=30) as client:
        email = f"after-kill-{uuid.uuid4().hex[:8]}@example.com"
        _sign_up(client, email)
        assert _sign_in(client, email).status_code == httpx.codes.CREATED


def test_the_broker_comes_back_on_the_same_port(system: RunningSystem) -> None:
    bootstrap = system.system.kafka_bootstrap
    host, port = bootstrap.rsplit(":", 1)
    system.stop_broker()
    with pytest.raises(OSError):  # noqa: PT011 (refused or reset: nothing listens)
        socket.create_connection((host, int(port)), timeout=1).close()
    system.start_broker()
    assert system.system.kafka_bootstrap == bootstrap
    socket.create_connection((host, int(port)), timeout=1).close()


def test_the_object_store_comes_back_on_the_same_port_with_its_data(
    system: RunningSystem,
) -> None:
    store = system.object_store
    assert store.endpoint == system.s3_endpoint
    s3 = s3_client(store)
    bucket = bucket_name("test-restart", uuid.uuid4().hex[:8])
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"kept across a restart")
    port = urlsplit(store.endpoint).port
    assert port is not None
    system.stop_object_store()
    with pytest.raises(OSError):  # noqa: PT011 (refused: nothing listens)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    system.start_object_store()
    assert system.object_store == store
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"kept across a restart"
    s3.close()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.create_server(("127.0.0.1", ports.video)), pytest.raises(StartupError) as error:
        asyncio.run(System(tmp_path, ports=ports).start())
    assert f"port {ports.video} (video) is taken" in str(error.value)
    assert not (tmp_path / "secrets.json").exists()
