"""A real SeaweedFS (``weed mini``): start, refused anonymous access, signed writes and reads, data
kept across a restart, a quick stop, ports."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from botocore.exceptions import ClientError
from vidmesh.devstack.objectstore import SeaweedStore, weed_binary
from vidmesh.devstack.s3 import ObjectStore, ObjectStoreError, bucket_name, s3_client


@pytest.fixture(scope="module")
def store() -> Iterator[SeaweedStore]:
    with SeaweedStore() as started:
        yield started


@pytest.fixture
def client(store: SeaweedStore) -> Iterator[Any]:
    s3 = s3_client(store.access)
    yield s3
    s3.close()


def _anonymous(method: str, url: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _new_bucket(client: Any) -> str:
    name = bucket_name("test", uuid.uuid4().hex[:12])
    client.create_bucket(Bucket=name)
    return name


def test_weed_binary_is_the_wheels() -> None:
    assert Path(weed_binary()).name == "weed"


def test_a_started_store_answers_on_loopback(store: SeaweedStore, client: Any) -> None:
    assert store.endpoint == f"http://127.0.0.1:{store.port}"
    assert store.running
    assert client.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    listening = {
        conn.laddr.ip
        for conn in psutil.Process(store.pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}


def test_an_anonymous_put_is_refused(store: SeaweedStore, client: Any) -> None:
    bucket = _new_bucket(client)
    status = _anonymous("PUT", f"{store.endpoint}/{bucket}/anonymous.bin", b"not allowed")
    assert status == 403
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_signed_put_then_get_returns_the_bytes(client: Any) -> None:
    bucket = _new_bucket(client)
    body = uuid.uuid4().bytes * 65536  # 1 MiB
    client.put_object(Bucket=bucket, Key="video.mp4", Body=body)
    assert client.get_object(Bucket=bucket, Key="video.mp4")["Body"].read() == body


def test_aws_keys_in_the_environment_give_no_access(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEYID0000000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    with SeaweedStore(tmp_path) as started:
        intruder = ObjectStore(started.endpoint, "us-east-1", "ENVKEYID0000000000000", "env-secret")
        s3 = s3_client(intruder)
        with pytest.raises(ClientError) as error:
            s3.list_buckets()
        s3.close()
    assert error.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_objects_survive_a_stop_and_start_on_the_same_folder(tmp_path: Path) -> None:
    store = SeaweedStore(tmp_path / "objectstore")
    with store:
        s3 = s3_client(store.access)
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="a", Body=b"still here")
        s3.close()
    with store:
        s3 = s3_client(store.access)
        assert s3.get_object(Bucket="kept", Key="a")["Body"].read() == b"still here"
        s3.close()


def test_stop_is_quick_and_frees_the_port(tmp_path: Path) -> None:
    store = SeaweedStore(tmp_path)
    store.start()
    port, pid = store.port, store.pid
    started = time.monotonic()
    store.stop()
    assert time.monotonic() - started < 5
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(OSError):  # noqa: PT011 (refused: nothing listens)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not list(Path("/tmp").glob(f"seaweedfs-*-{port}.sock"))


def test_a_restart_on_a_given_port_keeps_the_endpoint(tmp_path: Path) -> None:
    with SeaweedStore(tmp_path) as first:
        port = first.port
    with SeaweedStore(tmp_path, port=port) as again:
        assert again.endpoint == f"http://127.0.0.1:{port}"


def test_a_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ObjectStoreError):
            SeaweedStore(tmp_path, port=port).start()
