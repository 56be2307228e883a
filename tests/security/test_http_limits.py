"""HTTP limits at the gateway (issue 11, item 4): bodies capped before parsing, headers capped
and timed, stalled bodies closed, the early 413 delivered to clients that send first, a
concurrency limit, and a readiness that is the gateway's own.

The shared ``system`` runs the defaults; ``limited`` is a system of this module's own with a
12 MiB upload limit, 2 s body and send idle timeouts, 5 MiB store parts and a concurrency limit
of 64. The memory held by clients that never read a download: tests/e2e/test_memory.py
(``test_clients_that_never_read_a_download_hold_little_gateway_memory``); here, that they are
closed.
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import httpx
import psutil
import pytest
from vidmesh.devstack.samples import iter_sample_mp4, sample_mp4
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import assert_error, multipart, sign_up, upload_video
from tests.e2e.fixtures_systems import own_system
from tests.e2e.test_memory import RssSampler

MiB = 1024 * 1024
UPLOAD_LIMIT = 12 * MiB
PART = 5 * MiB
BODY_IDLE = 2.0
SEND_IDLE = 2.0
CONCURRENCY = 64
HEAD_TIMEOUT = 5.0  # the gateway's default header_timeout
SLOW_CLIENTS = 3000


@pytest.fixture(scope="module")
def limited(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    env = {
        "VIDMESH_API_GATEWAY_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "VIDMESH_API_GATEWAY_BODY_IDLE_TIMEOUT": str(BODY_IDLE),
        "VIDMESH_API_GATEWAY_SEND_IDLE_TIMEOUT": str(SEND_IDLE),
        "VIDMESH_API_GATEWAY_LIMIT_CONCURRENCY": str(CONCURRENCY),
        "VIDMESH_VIDEO_S3_PART_SIZE": str(PART),
    }
    with own_system(postgres_url, tmp_path_factory, "http", extra_env=env) as handle:
        yield handle


def address(system: RunningSystem) -> tuple[str, int]:
    parts = urlsplit(system.gateway_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def status_and_body(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else None


# -- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_30_mib_json_body_to_signin_is_413_and_costs_no_memory(
    system: RunningSystem, gateway: httpx.Client, declared: bool
) -> None:
    pid = system.pid("api-gateway")
    assert pid is not None
    gateway.post("/api/auth/signin", json={"email": "warm@example.com", "password": "x"})
    baseline = psutil.Process(pid).memory_info().rss
    piece = b"a" * MiB
    chunks = [b'{"email": "', *([piece] * 30), b'", "password": "x"}']
    content: bytes | Iterator[bytes] = b"".join(chunks) if declared else iter(chunks)
    headers = {"Content-Type": "application/json"}
    with RssSampler([pid]) as sampler:
        answer = gateway.post("/api/auth/signin", content=content, headers=headers)
    assert_error(answer, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    grown = sampler.peak[pid] - baseline
    assert grown < 8 * MiB, f"the gateway grew by {grown / MiB:.1f} MiB"


# -- headers ---------------------------------------------------------------------------------


def test_a_16_mb_header_is_431_not_a_reset(system: RunningSystem) -> None:
    header = b"X-Big: " + b"a" * (16 * 1000 * 1000) + b"\r\n"
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" + header + b"\r\n"
    with socket.create_connection(address(system), timeout=30) as sock:
        # Written from another thread while this one reads, as a browser would: the answer
        # must arrive whole, and the write may be cut short once the server stops reading.
        writer = threading.Thread(target=_send_ignoring_errors, args=(sock, request))
        writer.start()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        writer.join()
    status, body = status_and_body(answer)
    assert status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, answer[:200]
    assert body["statusCode"] == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


def _send_ignoring_errors(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may close first: that is the point
        sock.sendall(data)


def test_slow_headers_are_closed_while_a_normal_client_is_served(system: RunningSystem) -> None:
    pid = system.pid("api-gateway")
    assert pid is not None
    _enough_file_descriptors(pid, SLOW_CLIENTS + 500)
    host, port = address(system)
    rss_before = psutil.Process(pid).memory_info().rss
    slow: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        started = time.monotonic()
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            slow.append(sock)
        opened = time.monotonic() - started
        # Once one request is through, the gateway has taken in the burst of connections (that
        # burst is ours, not the attack's): then every request must be quick.
        _timed_healthz(host, port)
        rss_open = psutil.Process(pid).memory_info().rss
        # Measured while every slow client is still open (the first one's deadline not passed).
        assert time.monotonic() - started < HEAD_TIMEOUT - 1, f"opening took {opened:.1f} s"
        latencies = [_timed_healthz(host, port) for _ in range(10)]
        assert max(latencies) < 0.1, f"a normal client waited {max(latencies):.3f} s"

        # Each slow client goes on sending a header line a second; none may keep its socket.
        closed: set[int] = set()
        deadline = started + opened + HEAD_TIMEOUT + 10
        while len(closed) < SLOW_CLIENTS and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if _drained(sock):
                    selector.unregister(sock)
                    closed.add(sock.fileno())
            for sock in slow:
                if sock.fileno() not in closed:
                    _send_ignoring_errors(sock, b"X-Slow: 1\r\n")
        assert len(closed) == SLOW_CLIENTS, f"{SLOW_CLIENTS - len(closed)} slow clients still open"
        assert _timed_healthz(host, port) < 0.1
    finally:
        selector.close()
        for sock in slow:
            sock.close()
    grown = rss_open - rss_before
    print(f"{SLOW_CLIENTS} slow clients: opened in {opened:.1f} s, RSS +{grown / MiB:.1f} MiB")


def _enough_file_descriptors(gateway_pid: int, wanted: int) -> None:
    """Raise this process's and the gateway's soft limit on open files to ``wanted``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        assert hard >= wanted, f"ulimit -Hn is {hard}: the test needs {wanted}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    process = psutil.Process(gateway_pid)
    soft, hard = process.rlimit(psutil.RLIMIT_NOFILE)
    if soft < wanted:
        process.rlimit(psutil.RLIMIT_NOFILE, (wanted, hard))


def _timed_healthz(host: str, port: int) -> float:
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return time.monotonic() - started


def _drained(sock: socket.socket) -> bool:
    """Read what is there; True at EOF or a reset (the server closed the connection)."""
    try:
        return not sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_an_idle_kept_alive_connection_is_closed(system: RunningSystem) -> None:
    with socket.create_connection(address(system), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):  # the answer, then EOF when the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 5 + 3  # the default keep_alive_timeout, and slack


# -- uploads ---------------------------------------------------------------------------------


def test_a_stalled_upload_is_closed_and_nothing_is_stored(limited: RunningSystem) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=30) as client:
        account = sign_up(client)
    store = _store_client(limited)
    bucket = limited.s3_bucket
    objects_before = _object_keys(store, bucket)
    headers, body = multipart(iter_sample_mp4(PART + MiB, seed=91), title="Stalled")
    sent = b"".join(body)[: -MiB // 2]  # all but the end of the file: a part is stored
    request = (
        b"POST /api/videos HTTP/1.1\r\nHost: gateway\r\n"
        + f"Authorization: {account.auth['Authorization']}\r\n".encode()
        + f"Content-Type: {headers['Content-Type']}\r\n".encode()
        + f"Content-Length: {len(sent) + MiB}\r\n\r\n".encode()
    )
    with socket.create_connection(address(limited), timeout=30) as sock:
        sock.sendall(request + sent)
        _wait_for(lambda: _uploads_in_progress(store, bucket) == 1, "a multipart upload")
        stalled = time.monotonic()
        answer = sock.recv(65536)  # then nothing more is sent
        waited = time.monotonic() - stalled
    assert answer == b"", answer[:200]
    assert waited < BODY_IDLE + 3, f"closed after {waited:.1f} s"
    _wait_for(lambda: _uploads_in_progress(store, bucket) == 0, "the upload aborted")
    assert _object_keys(store, bucket) == objects_before


def _store_client(system: RunningSystem) -> Any:
    store = system.object_store
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=store.endpoint,
        region_name=store.region,
        aws_access_key_id=store.access_key_id,
        aws_secret_access_key=store.secret_access_key,
    )


def _uploads_in_progress(store: Any, bucket: str) -> int:
    return len(store.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _object_keys(store: Any, bucket: str) -> set[str]:
    pages = store.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _wait_for(condition: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_upload_from_urllib_gets_413(limited: RunningSystem, declared: bool) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=30) as client:
        account = sign_up(client)
    headers, body = multipart(iter_sample_mp4(UPLOAD_LIMIT + 4 * MiB, seed=92), title="Too big")
    data: bytes | Iterator[bytes] = b"".join(body) if declared else body
    request = urllib.request.Request(
        f"{limited.gateway_url}/api/videos",
        data=data,
        headers=headers | account.auth,
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    answer = json.loads(refused.value.read())
    assert answer["statusCode"] == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_a_download_nobody_reads_is_closed(limited: RunningSystem) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=30) as client:
        account = sign_up(client)
        video = upload_video(client, account, sample_mp4(8 * MiB, seed=93), "Unread")
    request = (
        f"GET /api/videos/{video}/download HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: {account.auth['Authorization']}\r\n\r\n"
    ).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no room to soak it up
        sock.settimeout(30)
        sock.connect(address(limited))
        sock.sendall(request)
        time.sleep(SEND_IDLE + 3)  # reads nothing for longer than the send idle timeout
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += len(chunk)
    assert received < 8 * MiB, "the whole video arrived: the connection was never closed"


# -- concurrency and readiness ---------------------------------------------------------------


def test_past_the_concurrency_limit_a_request_gets_503(limited: RunningSystem) -> None:
    held = [socket.create_connection(address(limited), timeout=10) for _ in range(CONCURRENCY)]
    time.sleep(0.5)  # every one accepted
    try:
        with httpx.Client(base_url=limited.gateway_url, timeout=10) as client:
            assert client.get("/healthz").status_code == HTTPStatus.SERVICE_UNAVAILABLE
    finally:
        for sock in held:
            sock.close()
    with httpx.Client(base_url=limited.gateway_url, timeout=10) as client:
        _wait_for(lambda: client.get("/healthz").status_code == HTTPStatus.OK, "room again")


def test_readiness_is_the_gateways_own_while_a_dependency_is_down(
    limited: RunningSystem,
) -> None:
    with httpx.Client(base_url=limited.gateway_url, timeout=10) as client:
        limited.stop_broker()
        try:
            ready = client.get("/readyz")
            assert ready.status_code == HTTPStatus.OK, ready.text
            assert ready.json() == {"status": "ok", "checks": {"database": True}}
            behind = client.get("/health/dependencies")
            assert behind.status_code == HTTPStatus.SERVICE_UNAVAILABLE, behind.text
            assert behind.json()["checks"]["broker"] is False
        finally:
            limited.start_broker()
        _wait_for(
            lambda: client.get("/health/dependencies").status_code == HTTPStatus.OK,
            "the broker back",
            timeout=60,
        )
