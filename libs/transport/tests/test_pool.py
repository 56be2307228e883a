"""TcpClientPool against a real TcpServer: N connections, calls spread over them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from vidmesh.transport import (
    Context,
    OutgoingCall,
    Router,
    ServiceUnavailable,
    TcpClientPool,
)
from vidmesh.transport.middleware import ClientCallNext
from vidmesh.transport.testing import ServedTcp, serve_tcp, wait_until

SIZE = 4


class Barrier:
    """Holds every call until ``expected`` of them are in flight at once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.open = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.open.set()
        await self.open.wait()


def make_router(barrier: Barrier | None = None) -> Router:
    router = Router()

    @router.message("echo")
    def echo(data: Any) -> Any:
        return data

    @router.message("peer")
    async def peer(context: Context) -> str | None:
        if barrier is not None:
            await barrier.wait()
        return context.peer

    @router.message("headers")
    async def headers(context: Context) -> dict[str, str]:
        return context.headers

    @router.message("count")
    async def count(up_to: int) -> AsyncIterator[int]:
        for number in range(up_to):
            yield number

    return router


@pytest.fixture
async def served() -> AsyncIterator[ServedTcp]:
    async with serve_tcp(make_router()) as served:
        yield served


def pool_for(served: ServedTcp, **kwargs: Any) -> TcpClientPool:
    return TcpClientPool("127.0.0.1", served.port, size=SIZE, **kwargs)


async def test_connect_opens_size_connections(served: ServedTcp) -> None:
    async with pool_for(served) as pool:
        await pool.connect()
        assert len(served.server.connections) == SIZE
        peers = {await client.send("peer") for client in pool.clients}
        assert len(peers) == SIZE


async def test_concurrent_calls_are_spread_over_every_connection() -> None:
    calls = SIZE * 5
    async with serve_tcp(make_router(Barrier(calls))) as served, pool_for(served) as pool:
        await pool.connect()
        peers = await asyncio.gather(*(pool.send("peer") for _ in range(calls)))
        # Least busy first: with every call in flight together, each connection gets 5.
        assert sorted(Counter(peers).values()) == [5] * SIZE
        assert len(served.server.connections) == SIZE


async def test_a_cold_pool_spreads_its_first_burst_over_every_connection() -> None:
    calls = SIZE * 2
    async with serve_tcp(make_router(Barrier(calls))) as served, pool_for(served) as pool:
        peers = await asyncio.gather(*(pool.send("peer") for _ in range(calls)))
        assert len(set(peers)) == SIZE
        assert len(served.server.connections) == SIZE


async def test_sequential_calls_use_one_idle_connection_at_a_time(served: ServedTcp) -> None:
    async with pool_for(served) as pool:
        for number in range(10):
            assert await pool.send("echo", number) == number
        assert sum(client.in_flight for client in pool.clients) == 0


async def test_a_pool_replaces_a_lost_connection(served: ServedTcp) -> None:
    async with pool_for(served) as pool:
        await pool.connect()
        victim = next(iter(served.server.connections))
        victim.abort()
        await wait_until(lambda: len(served.server.connections) == SIZE - 1)
        answers = await asyncio.gather(*(pool.send("echo", i) for i in range(SIZE * 3)))
        assert answers == list(range(SIZE * 3))
        assert len(served.server.connections) == SIZE


async def test_pool_middleware_headers_reach_the_handler(served: ServedTcp) -> None:
    async def traced(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        call.headers["traceparent"] = "00-1-2-01"
        return await call_next(call)

    async with pool_for(served, middleware=[traced]) as pool:
        assert await pool.send("headers") == {"traceparent": "00-1-2-01"}


async def test_pool_streams_and_emits(served: ServedTcp) -> None:
    async with pool_for(served) as pool:
        assert [item async for item in pool.stream("count", 4)] == [0, 1, 2, 3]
        await pool.emit("nobody.listens", 1)
        assert await pool.send("echo", "after") == "after"


async def test_close_closes_every_connection(served: ServedTcp) -> None:
    pool = pool_for(served)
    await pool.connect()
    assert len(served.server.connections) == SIZE
    await pool.close()
    await wait_until(lambda: not served.server.connections)
    with pytest.raises(ServiceUnavailable):
        await pool.send("echo", 1)
