"""Hostile, broken, slow and greedy peers against a real TcpServer, over real sockets.

Raw peers write bytes by hand. In every case the bad connection must be closed and a healthy
client, on a connection of its own, must keep getting answers on that same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from structlog.testing import capture_logs
from vidmesh.transport import (
    ConnectionLost,
    Microservice,
    ServerOptions,
    TcpClient,
    TcpServer,
)
from vidmesh.transport.tcp.connection import ServerConnection
from vidmesh.transport.tcp.framing import FrameDecoder
from vidmesh.transport.testing import (
    ServedTcp,
    echo_router,
    read_until_closed,
    serve_tcp,
    wait_until,
)

KiB = 1024
MiB = 1024 * KiB


# -- helpers -------------------------------------------------------------------------------


def frame(packet: Any) -> bytes:
    body = json.dumps(packet, separators=(",", ":"))
    assert body.isascii()
    return f"{len(body)}#{body}".encode()


def request(pattern: str, data: Any = None, request_id: str = "1") -> bytes:
    return frame({"pattern": pattern, "data": data, "id": request_id})


async def open_raw(
    port: int, *, receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw peer; ``receive_buffer`` shrinks its socket's receive buffer (a slow reader)."""
    if receive_buffer is None:
        return await asyncio.open_connection("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def close_raw(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def close_reasons(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "connection_closed"]


def server_side_of(served: ServedTcp, writer: asyncio.StreamWriter) -> ServerConnection:
    host, port = writer.get_extra_info("sockname")[:2]
    [connection] = [c for c in served.server.connections if c.peer == f"{host}:{port}"]
    return connection


class Healthy:
    """A TcpClient that must keep being answered on its one connection."""

    def __init__(self, served: ServedTcp) -> None:
        self.client = served.client
        self.peer: str | None = None

    async def check(self) -> None:
        peer = await self.client.send("peer", timeout=2.0)
        if self.peer is None:
            self.peer = peer
        assert peer == self.peer, "the healthy client had to reconnect"
        assert await self.client.send("echo", {"ok": [1, 2]}, timeout=2.0) == {"ok": [1, 2]}


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


SWEEP_OPTIONS = ServerOptions(max_frame_length=1024, incomplete_frame_timeout=0.3)


@pytest.fixture
async def served() -> AsyncIterator[ServedTcp]:
    async with serve_tcp(echo_router(), options=SWEEP_OPTIONS) as served:
        yield served


async def assert_bad_bytes_close_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]], data: bytes, reason: str
) -> None:
    healthy = Healthy(served)
    await healthy.check()
    reader, writer = await open_raw(served.port)
    try:
        writer.write(data)
        assert await read_until_closed(reader) == b""
    finally:
        await close_raw(writer)
    assert close_reasons(logs) == [reason]
    await wait_until(lambda: len(served.server.connections) == 1)
    await healthy.check()


# -- malformed frames ----------------------------------------------------------------------


async def test_garbage_bytes_close_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    await assert_bad_bytes_close_the_connection(
        served, logs, b"\x00\xff\xfeGET / HTTP/1.1\r\n\r\n", "corrupted_length"
    )


async def test_a_negative_length_closes_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    await assert_bad_bytes_close_the_connection(served, logs, b'-5#{"a":1}', "corrupted_length")


async def test_a_non_numeric_length_closes_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    await assert_bad_bytes_close_the_connection(
        served, logs, b'1x#{"pattern":"echo"}', "corrupted_length"
    )


async def test_a_frame_over_max_frame_length_closes_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    # Refused from its header alone: the server does not wait for (or buffer) the body.
    too_long = SWEEP_OPTIONS.max_frame_length + 1
    await assert_bad_bytes_close_the_connection(served, logs, b"%d#{" % too_long, "frame_too_large")


async def test_invalid_json_closes_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    await assert_bad_bytes_close_the_connection(served, logs, b'9#{"id":1,}', "invalid_json")


async def test_requests_before_a_bad_frame_in_the_same_read_are_still_answered(
    served: ServedTcp,
) -> None:
    reader, writer = await open_raw(served.port)
    writer.write(request("echo", "first", "a") + request("echo", "second", "b") + b"x#oops")
    received = await read_until_closed(reader)
    await close_raw(writer)
    decoder = FrameDecoder(MiB)
    answers = decoder.feed(received)
    assert [(a["id"], a["response"]) for a in answers] == [("a", "first"), ("b", "second")]


@pytest.mark.parametrize("body", [b"[1,2]", b'"text"', b"42", b"null"])
async def test_a_json_value_that_is_not_an_object_closes_the_connection(
    served: ServedTcp, logs: list[MutableMapping[str, Any]], body: bytes
) -> None:
    data = b"%d#%b" % (len(body), body)
    await assert_bad_bytes_close_the_connection(served, logs, data, "invalid_packet")


async def test_a_frame_that_never_completes_is_closed_after_incomplete_frame_timeout(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    healthy = Healthy(served)
    await healthy.check()
    reader, writer = await open_raw(served.port)
    try:
        writer.write(b'100#{"pattern":"echo","da')
        started = time.monotonic()
        assert await read_until_closed(reader) == b""
        waited = time.monotonic() - started
    finally:
        await close_raw(writer)
    assert SWEEP_OPTIONS.incomplete_frame_timeout <= waited < 2.0
    assert close_reasons(logs) == ["incomplete_frame_timeout"]
    await healthy.check()


async def test_an_idle_connection_is_closed_but_one_with_a_handler_in_flight_is_not(
    logs: list[MutableMapping[str, Any]],
) -> None:
    release = asyncio.Event()
    router = echo_router()

    @router.message("slow")
    async def slow() -> str:
        await release.wait()
        return "finally"

    idle_timeout = 0.3
    options = ServerOptions(idle_timeout=idle_timeout)
    async with serve_tcp(router, options=options) as served:
        started = time.monotonic()
        idle_reader, idle_writer = await open_raw(served.port)
        busy_reader, busy_writer = await open_raw(served.port)
        try:
            busy_writer.write(request("slow"))
            assert await read_until_closed(idle_reader) == b""
            assert time.monotonic() - started >= idle_timeout
            await asyncio.sleep(idle_timeout)  # the busy one outlives the limit, and sweeps
            assert close_reasons(logs) == ["idle_timeout"]
            release.set()
            answer = FrameDecoder(1 * MiB).feed(await busy_reader.readuntil(b"true}"))
            assert answer == [{"id": "1", "response": "finally", "isDisposed": True}]
        finally:
            await close_raw(idle_writer)
            await close_raw(busy_writer)
        assert await served.client.send("echo", 7) == 7


# -- peers that go away ----------------------------------------------------------------------


async def test_a_client_that_disconnects_mid_request_does_not_disturb_the_server(
    logs: list[MutableMapping[str, Any]],
) -> None:
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    router = echo_router()

    @router.message("slow")
    async def slow() -> str:
        started.set()
        await release.wait()
        finished.set()
        return "to nobody"

    loop_errors: list[MutableMapping[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    try:
        async with serve_tcp(router) as served:
            healthy = Healthy(served)
            await healthy.check()
            _, writer = await open_raw(served.port)
            writer.write(request("slow"))
            await asyncio.wait_for(started.wait(), 2)
            await close_raw(writer)
            await wait_until(lambda: len(served.server.connections) == 1)
            release.set()
            await asyncio.wait_for(finished.wait(), 2)  # its answer went to nobody
            await healthy.check()
    finally:
        loop.set_exception_handler(None)
    assert loop_errors == []
    assert [entry for entry in logs if entry["log_level"] in ("error", "critical")] == []


async def test_a_stream_stops_when_its_client_disconnects() -> None:
    stopped = asyncio.Event()
    router = echo_router()

    @router.message("ticks")
    async def ticks() -> AsyncIterator[int]:
        try:
            tick = 0
            while True:
                yield tick
                tick += 1
                await asyncio.sleep(0.001)
        finally:
            stopped.set()

    async with serve_tcp(router) as served:
        reader, writer = await open_raw(served.port)
        writer.write(request("ticks"))
        await reader.readuntil(b"false}")  # the first item arrived
        await close_raw(writer)
        await asyncio.wait_for(stopped.wait(), 2)  # the generator is closed, not fed on
        assert await served.client.send("echo", 1) == 1


# -- peers that do not read their answers -----------------------------------------------------


async def test_reading_pauses_while_a_peer_does_not_read_its_answers() -> None:
    answer = "x" * (16 * KiB)
    requests = 2000
    calls = 0
    router = echo_router()

    @router.message("chunk")
    def chunk(index: int) -> str:
        nonlocal calls
        calls += 1
        return answer

    options = ServerOptions(write_buffer_high_water=64 * KiB, max_send_buffer=256 * MiB)
    async with serve_tcp(router, options=options) as served:
        reader, writer = await open_raw(served.port, receive_buffer=4 * KiB)
        try:
            writer.write(b"".join(request("chunk", i, str(i)) for i in range(requests)))
            # The peer reads nothing: the server must stop taking its requests.
            seen = -1
            while seen != calls:
                seen = calls
                await asyncio.sleep(0.1)
            assert calls < requests // 2
            assert server_side_of(served, writer).reading_paused
            assert await served.client.send("echo", "still served") == "still served"

            # Once the peer reads, the server resumes and answers every request, in order.
            decoder, ids = FrameDecoder(1 * MiB), list[str]()
            async with asyncio.timeout(10):
                while len(ids) < requests:
                    ids.extend(packet["id"] for packet in decoder.feed(await reader.read(MiB)))
            assert ids == [str(i) for i in range(requests)]
            assert calls == requests
        finally:
            await close_raw(writer)


async def test_a_peer_held_back_by_backpressure_is_not_cut_off_for_an_unfinished_frame(
    logs: list[MutableMapping[str, Any]],
) -> None:
    # The peer sent its frame whole; it is the server that stopped reading it.
    answer = "q" * (64 * KiB)
    router = echo_router()

    @router.message("chunk")
    def chunk() -> str:
        return answer

    options = ServerOptions(write_buffer_high_water=64 * KiB, incomplete_frame_timeout=0.2)
    async with serve_tcp(router, options=options) as served:
        reader, writer = await open_raw(served.port, receive_buffer=4 * KiB)
        last = request("echo", "last", "last")
        try:
            writer.write(b"".join(request("chunk", None, str(i)) for i in range(200)) + last[:9])
            await wait_until(lambda: len(served.server.connections) == 1)
            connection = next(iter(served.server.connections))
            await wait_until(lambda: connection.reading_paused)
            await asyncio.sleep(options.incomplete_frame_timeout * 2)  # sweeps every 0.05 s
            assert not connection.closed
            decoder, ids = FrameDecoder(1 * MiB), list[str]()
            async with asyncio.timeout(10):
                while len(ids) < 200:
                    ids.extend(packet["id"] for packet in decoder.feed(await reader.read(MiB)))
                writer.write(last[9:])
                while ids[-1] != "last":
                    ids.extend(packet["id"] for packet in decoder.feed(await reader.read(MiB)))
            assert ids == [*map(str, range(200)), "last"]
        finally:
            await close_raw(writer)
        assert close_reasons(logs) == []


async def test_a_peer_that_never_reads_is_cut_off_past_max_send_buffer(
    logs: list[MutableMapping[str, Any]],
) -> None:
    answer = "y" * (128 * KiB)
    requests = 300
    turn = [asyncio.Event() for _ in range(requests + 1)]
    router = echo_router()

    @router.message("big")
    async def big(index: int) -> str:
        await turn[index].wait()
        turn[index + 1].set()  # the next one answers in the next loop iteration
        return answer

    options = ServerOptions(
        write_buffer_high_water=64 * KiB,
        max_send_buffer=512 * KiB,
        max_in_flight_per_connection=512,
    )
    async with serve_tcp(router, options=options) as served:
        healthy = Healthy(served)
        await healthy.check()
        reader, writer = await open_raw(served.port, receive_buffer=4 * KiB)
        peak = 0
        try:
            writer.write(b"".join(request("big", i, str(i)) for i in range(requests)))
            await wait_until(lambda: len(served.server.connections) == 2)
            victim = server_side_of(served, writer)
            await wait_until(lambda: len(victim.tasks) == requests)
            turn[0].set()
            # One answer per loop iteration, and this loop samples every iteration: it sees
            # what the connection holds between any two answers.
            async with asyncio.timeout(5):
                while not victim.closed:
                    peak = max(peak, victim.unsent_bytes)
                    await asyncio.sleep(0)
            await read_until_closed(reader)  # the server reset the connection
        finally:
            await close_raw(writer)
            for event in turn:
                event.set()
        assert close_reasons(logs) == ["send_buffer_exceeded"]
        one_frame = len(frame({"id": "299", "response": answer, "isDisposed": True}))
        print(f"send_buffer_peak={peak} limit={options.max_send_buffer} frame={one_frame}")  # -s
        assert options.max_send_buffer - one_frame < peak <= options.max_send_buffer + one_frame
        await healthy.check()


class PeakRss:
    """Samples this process's resident memory every millisecond in a thread."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline = int(self._process.memory_info().rss)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, int(self._process.memory_info().rss))
            time.sleep(0.001)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def test_server_memory_stays_bounded_under_peers_that_flood_and_never_read() -> None:
    # Each peer sends, in one write of ~130 KiB, 3000 requests for a 64 KiB answer (190 MiB
    # of answers) and never reads. What the server may hold per peer is bounded by its
    # options, not by what the peer asks for.
    answer = "z" * (64 * KiB)
    peers, requests = 8, 3000
    calls = 0
    router = echo_router()

    @router.message("big")
    async def big() -> str:
        nonlocal calls
        calls += 1
        return answer

    @router.message("big_sync")
    def big_sync() -> str:
        nonlocal calls
        calls += 1
        return answer

    options = ServerOptions(
        write_buffer_high_water=256 * KiB,
        max_send_buffer=1 * MiB,
        max_in_flight_per_connection=16,
    )
    async with serve_tcp(router, options=options) as served:
        assert await served.client.send("big") == answer  # warm up the allocator
        writers = []
        with PeakRss() as rss:
            try:
                for peer in range(peers):
                    _, writer = await open_raw(served.port, receive_buffer=4 * KiB)
                    writers.append(writer)
                    pattern = "big" if peer % 2 else "big_sync"
                    burst = [request(pattern, None, str(i)) for i in range(requests)]
                    writer.write(b"".join(burst))
                seen = -1
                while seen != calls:  # every peer is paused or cut off: nothing moves
                    seen = calls
                    await asyncio.sleep(0.1)
                for connection in served.server.connections:
                    assert connection.unsent_bytes <= options.max_send_buffer + len(answer) + 64
                assert await served.client.send("echo", "alive") == "alive"
            finally:
                for writer in writers:
                    await close_raw(writer)
        await wait_until(lambda: len(served.server.connections) == 1)
    per_peer = options.max_send_buffer + options.write_buffer_high_water + len(answer)
    print(f"flood: rss_growth={rss.growth} calls={calls} per_peer_bound={per_peer}")  # with -s
    assert calls < peers * requests // 10
    assert rss.growth < peers * per_peer + 32 * MiB, f"RSS grew by {rss.growth / MiB:.1f} MiB"


# -- a server going away ----------------------------------------------------------------------


async def test_a_live_client_reconnects_after_the_server_restarts_on_the_same_port() -> None:
    started = asyncio.Event()
    router = echo_router()

    @router.message("sleep")
    async def sleep(seconds: float) -> str:
        started.set()
        await asyncio.sleep(seconds)
        return "finished"

    options = ServerOptions(drain_timeout=0.3)
    first = TcpServer("127.0.0.1", 0, options=options)
    async with Microservice("first", router, transports=[first]):
        port = first.port
        client = TcpClient("127.0.0.1", port)
        assert await client.send("echo", "before") == "before"
        finishes = asyncio.ensure_future(client.send("sleep", 0.05))
        cut_off = asyncio.ensure_future(client.send("sleep", 60))
        await asyncio.wait_for(started.wait(), 2)
    try:
        assert await finishes == "finished"  # answered while the server drained
        with pytest.raises(ConnectionLost):
            await cut_off  # still running at drain_timeout: cancelled, its connection closed

        second = TcpServer("127.0.0.1", port, options=options)
        async with Microservice("second", router, transports=[second]):
            assert await client.send("echo", "after") == "after"
            assert len(second.connections) == 1
    finally:
        await client.close()
