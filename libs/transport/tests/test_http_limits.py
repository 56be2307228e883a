"""HTTP limits (http_limits.py) on a real uvicorn server over real sockets, with short limits."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from vidmesh.transport import Microservice, Router
from vidmesh.transport.asgi import AsgiTransport
from vidmesh.transport.http_limits import HttpLimits

LIMITS = HttpLimits(
    max_head_bytes=4096,
    head_timeout=0.5,
    body_idle_timeout=0.5,
    linger_timeout=3.0,
    linger_bytes=4 * 1024 * 1024,
    send_idle_timeout=0.5,
)


class App:
    """Reads the body of ``/read``, answers ``/early`` before reading; records disconnects."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        size = 0
        if scope["path"] == "/stream":
            await self.stream(receive, send)
            return
        if scope["path"] == "/read":
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected.set()
                    return
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        status = 413 if scope["path"] == "/early" else 200
        body = str(size).encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def stream(self, receive: Any, send: Any) -> None:
        """64 MiB, 64 KiB at a time, until the client goes away."""

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        watching = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        piece = b"v" * 65536
        for _ in range(1024):
            if self.disconnected.is_set():
                return
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        watching.cancel()


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, int]]:
    app = App()
    asgi = AsgiTransport(app, port=0, limits=LIMITS)
    async with Microservice("http", Router(), transports=[asgi]):
        yield app, asgi.port


def exchange(port: int, request: bytes, *, read_first: bool = False) -> bytes:
    """Send ``request`` whole (as urllib does) then read until EOF; in a thread."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


async def in_thread(port: int, request: bytes) -> bytes:
    return await asyncio.to_thread(exchange, port, request)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_normal_request_is_served_and_kept_alive(served: tuple[App, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):
        writer.write(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"connection: close" not in head.lower()
        assert await reader.readexactly(1) == b"3"
    writer.close()


async def test_a_head_over_the_cap_gets_431_in_the_json_shape(served: tuple[App, int]) -> None:
    _, port = served
    huge = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    answer = await in_thread(port, huge)
    assert status_of(answer) == 431
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {
        "statusCode": 431,
        "message": "The request's headers are too large",
        "error": "Request Header Fields Too Large",
    }


async def test_many_headers_in_one_read_over_the_cap_get_431(served: tuple[App, int]) -> None:
    _, port = served
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(60))
    answer = await in_thread(port, b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431


async def test_a_head_that_trickles_gets_408_at_its_deadline(served: tuple[App, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\n")
    answer = b""
    async with asyncio.timeout(5):
        while True:
            writer.write(b"X-Slow: 1\r\n")
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
    assert status_of(answer) == 408
    assert 0.4 < time.monotonic() - started < 2.0
    writer.close()


async def test_a_silent_new_connection_is_closed_at_the_head_deadline(
    served: tuple[App, int],
) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(3):
        await reader.read()  # until EOF
    writer.close()


async def test_a_stalled_body_is_closed_and_the_app_sees_a_disconnect(
    served: tuple[App, int],
) -> None:
    app, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
    async with asyncio.timeout(3):
        assert await reader.read() == b""  # closed without an answer
        await app.disconnected.wait()
    writer.close()


async def test_an_early_answer_reaches_a_client_that_sends_its_whole_body_first(
    served: tuple[App, int],
) -> None:
    _, port = served
    body = b"x" * (2 * 1024 * 1024)
    request = b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    answer = await in_thread(port, request + body)
    assert status_of(answer) == 413
    assert b"connection: close" in answer.lower()


async def test_the_linger_stops_after_its_byte_budget(served: tuple[App, int]) -> None:
    _, port = served
    request = b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n"
    sent = 0
    answered = threading.Event()

    def flood() -> None:
        nonlocal sent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            piece = b"x" * 65536
            try:
                while sent < 100 * 1024 * 1024:
                    sock.sendall(piece)
                    sent += len(piece)
            except OSError:
                answered.set()

    await asyncio.to_thread(flood)
    assert answered.is_set(), "the server read far past its linger budget"
    assert sent < 4 * LIMITS.linger_bytes


async def test_past_the_concurrency_limit_a_request_gets_503_in_the_json_shape() -> None:
    asgi = AsgiTransport(App(), port=0, limits=LIMITS, limit_concurrency=3)
    async with Microservice("http", Router(), transports=[asgi]):
        held = [await asyncio.open_connection("127.0.0.1", asgi.port) for _ in range(3)]
        await asyncio.sleep(0.1)  # accepted
        answer = await in_thread(asgi.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        for _, writer in held:
            writer.close()
    assert status_of(answer) == 503
    assert b"retry-after: 1" in answer.lower()
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["statusCode"] == 503


async def test_a_client_that_reads_nothing_of_an_answer_is_closed(
    served: tuple[App, int],
) -> None:
    app, port = served
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        async with asyncio.timeout(3):
            await app.disconnected.wait()
    finally:
        sock.close()
