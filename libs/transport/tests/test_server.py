"""TcpServer over real sockets: capacity, limits, connection cap, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs
from vidmesh.transport import (
    ConnectionLost,
    Context,
    RemoteError,
    ServerOptions,
    ServiceState,
    TcpClient,
)
from vidmesh.transport.errors import NO_MESSAGE_HANDLER
from vidmesh.transport.testing import (
    ServedTcp,
    echo_router,
    read_until_closed,
    serve_tcp,
    wait_until,
)

KiB = 1024


def frame(packet: Any) -> bytes:
    body = json.dumps(packet, separators=(",", ":"))
    return f"{len(body)}#{body}".encode()


async def close_raw(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def close_reasons(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "connection_closed"]


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


@pytest.fixture
async def served() -> AsyncIterator[ServedTcp]:
    async with serve_tcp(echo_router()) as served:
        yield served


async def test_a_request_is_answered(served: ServedTcp) -> None:
    assert await served.client.send("echo", {"n": [1, "two", None]}) == {"n": [1, "two", None]}


async def test_a_request_without_a_handler_gets_nests_error(served: ServedTcp) -> None:
    with pytest.raises(RemoteError) as caught:
        await served.client.send("nobody.home", 1)
    assert caught.value.error == NO_MESSAGE_HANDLER
    assert await served.client.send("echo", 2) == 2


async def test_an_event_without_a_handler_is_dropped_and_the_connection_kept(
    served: ServedTcp, logs: list[MutableMapping[str, Any]]
) -> None:
    peer = await served.client.send("peer")
    await served.client.emit("nobody.listens", {"x": 1})
    assert await served.client.send("peer") == peer
    assert [entry["event"] for entry in logs] == ["no_event_handler"]


async def test_server_counts_its_connections(served: ServedTcp) -> None:
    assert served.server.connections == set()
    async with (
        TcpClient("127.0.0.1", served.port) as first,
        TcpClient("127.0.0.1", served.port) as second,
    ):
        await first.connect()
        await second.connect()
        await wait_until(lambda: len(served.server.connections) == 2)
    await wait_until(lambda: len(served.server.connections) == 0)


async def test_a_thousand_concurrent_connections_are_all_answered() -> None:
    connections = 1000
    arrived = 0
    everyone_in = asyncio.Event()
    router = echo_router()

    @router.message("gather")
    async def gather(index: int, context: Context) -> list[Any]:
        nonlocal arrived
        arrived += 1
        if arrived == connections:
            everyone_in.set()
        await everyone_in.wait()  # answers only once all 1000 requests are in flight at once
        return [index, context.peer]

    async with serve_tcp(router) as served:
        clients = [TcpClient("127.0.0.1", served.port) for _ in range(connections)]
        try:
            async with asyncio.timeout(30):
                answers = await asyncio.gather(
                    *(client.send("gather", i) for i, client in enumerate(clients))
                )
            assert [index for index, _ in answers] == list(range(connections))
            assert len({peer for _, peer in answers}) == connections
            assert len(served.server.connections) == connections
        finally:
            for client in clients:
                await client.close()
        await wait_until(lambda: not served.server.connections, timeout=10)


async def test_connections_over_max_connections_are_closed_and_the_others_keep_working(
    logs: list[MutableMapping[str, Any]],
) -> None:
    options = ServerOptions(max_connections=3)
    async with serve_tcp(echo_router(), options=options) as served:
        clients = [TcpClient("127.0.0.1", served.port) for _ in range(3)]
        try:
            peers = [await client.send("peer") for client in clients]
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            try:
                writer.write(frame({"pattern": "echo", "data": 1, "id": "1"}))
                assert await read_until_closed(reader) == b""
            finally:
                await close_raw(writer)
            assert close_reasons(logs) == ["too_many_connections"]
            assert [await client.send("peer") for client in clients] == peers
            assert len(served.server.connections) == 3

            await clients[0].close()  # a freed slot is given to the next connection
            await wait_until(lambda: len(served.server.connections) == 2)
            async with TcpClient("127.0.0.1", served.port) as newcomer:
                assert await newcomer.send("echo", "admitted") == "admitted"
        finally:
            for client in clients:
                await client.close()


async def test_max_in_flight_per_connection_bounds_the_handlers_running_for_one_peer() -> None:
    limit, requests = 4, 12
    running = peak = 0
    release = asyncio.Event()
    router = echo_router()

    @router.message("hold")
    async def hold(index: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return index

    options = ServerOptions(max_in_flight_per_connection=limit)
    async with serve_tcp(router, options=options) as served:
        # One client, one connection: the 12 requests arrive together, in one read.
        calls = [asyncio.ensure_future(served.client.send("hold", i)) for i in range(requests)]
        await wait_until(lambda: running == limit)
        await asyncio.sleep(0.05)  # the server must not start more while these run
        assert peak == limit
        release.set()
        assert await asyncio.gather(*calls) == list(range(requests))
        assert peak == limit


async def test_graceful_shutdown_answers_requests_in_flight_before_closing() -> None:
    started = asyncio.Event()
    router = echo_router()

    @router.message("slow")
    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "done before the close"

    async with serve_tcp(router) as served:
        call = asyncio.ensure_future(served.client.send("slow"))
        await asyncio.wait_for(started.wait(), 2)
        await served.service.stop()
        assert call.done()  # answered before stop() returned, over the connection
        assert call.result() == "done before the close"
        assert served.service.state is ServiceState.STOPPED
        assert served.server.connections == set()


async def test_graceful_shutdown_refuses_new_connections_while_draining() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    router = echo_router()

    @router.message("slow")
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    async with serve_tcp(router) as served:
        call = asyncio.ensure_future(served.client.send("slow"))
        await asyncio.wait_for(started.wait(), 2)
        stopping = asyncio.ensure_future(served.service.stop())
        await wait_until(lambda: served.service.state is ServiceState.DRAINING)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", served.port)
        release.set()
        assert await call == "done"
        await stopping


async def test_drain_timeout_cancels_handlers_that_run_too_long() -> None:
    started = asyncio.Event()
    cancelled = False
    router = echo_router()

    @router.message("forever")
    async def forever() -> str:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled = True
            raise
        return "never"

    options = ServerOptions(drain_timeout=0.2)
    async with serve_tcp(router, options=options) as served:
        call = asyncio.ensure_future(served.client.send("forever"))
        await asyncio.wait_for(started.wait(), 2)
        stopping = time.monotonic()
        async with asyncio.timeout(3):
            await served.service.stop()
        assert options.drain_timeout <= time.monotonic() - stopping < 2
        assert cancelled
        with pytest.raises(ConnectionLost):
            await call


async def test_stop_cuts_off_a_peer_that_never_reads_after_close_timeout() -> None:
    answer = "w" * (64 * KiB)
    router = echo_router()

    @router.message("big")
    def big() -> str:
        return answer

    options = ServerOptions(write_buffer_high_water=64 * KiB, close_timeout=0.2)
    async with serve_tcp(router, options=options) as served:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KiB)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", served.port))
            burst = b"".join(frame({"pattern": "big", "id": str(i)}) for i in range(200))
            await asyncio.get_running_loop().sock_sendall(sock, burst)
            await wait_until(lambda: any(c.reading_paused for c in served.server.connections))
            stopping = time.monotonic()
            async with asyncio.timeout(3):
                await served.service.stop()
            assert time.monotonic() - stopping < 1.5
            # Not left half-closed for ever with answers nobody takes.
            assert served.server.connections == set()
        finally:
            sock.close()
