"""Microservice lifecycle with real TcpServers: states, lifespan, readiness, drain, failures."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from vidmesh.transport import (
    ConnectionLost,
    Microservice,
    ServerOptions,
    ServiceState,
    TcpClient,
    TcpServer,
)
from vidmesh.transport.routing import RouteTable
from vidmesh.transport.testing import echo_router, wait_until


class RecordingServer(TcpServer):
    """A real TcpServer that notes when it starts and stops."""

    def __init__(self, journal: list[str], label: str, port: int = 0) -> None:
        super().__init__("127.0.0.1", port, options=ServerOptions(drain_timeout=1.0))
        self.journal = journal
        self.label = label

    async def start(self, table: RouteTable) -> None:
        self.journal.append(f"{self.label} starting")
        await super().start(table)
        self.journal.append(f"{self.label} listening")

    async def stop(self) -> None:
        await super().stop()
        self.journal.append(f"{self.label} stopped")


def recording_lifespan(
    journal: list[str],
) -> Callable[[Microservice], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(service: Microservice) -> AsyncIterator[None]:
        journal.append(f"lifespan enter ({service.state.value})")
        yield
        journal.append(f"lifespan exit ({service.state.value})")

    return lifespan


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_a_service_goes_from_created_to_ready_to_stopped() -> None:
    server = TcpServer("127.0.0.1", 0)
    service = Microservice("svc", echo_router(), transports=[server])
    states = [service.state]
    await service.start()
    states.append(service.state)
    async with TcpClient("127.0.0.1", server.port) as client:
        assert await client.send("echo", "ready") == "ready"
    await service.stop()
    states.append(service.state)
    assert states == [ServiceState.CREATED, ServiceState.READY, ServiceState.STOPPED]
    assert refuses_connections(server.port)


async def test_lifespan_is_entered_before_transports_start_and_exited_after_they_stop() -> None:
    journal: list[str] = []
    service = Microservice(
        "svc",
        echo_router(),
        transports=[RecordingServer(journal, "a"), RecordingServer(journal, "b")],
        lifespan=recording_lifespan(journal),
    )
    async with service:
        journal.append("serving")
    assert journal == [
        "lifespan enter (starting)",
        "a starting",
        "a listening",
        "b starting",
        "b listening",
        "serving",
        "b stopped",
        "a stopped",
        "lifespan exit (stopped)",
    ]


async def test_wait_ready_returns_once_every_transport_listens() -> None:
    journal: list[str] = []
    service = Microservice("svc", echo_router(), transports=[RecordingServer(journal, "a")])
    waiter = asyncio.ensure_future(service.wait_ready())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await service.start()
    await asyncio.wait_for(waiter, 1)
    assert journal == ["a starting", "a listening"]
    assert service.state is ServiceState.READY
    await service.stop()


async def test_stop_from_ready_drains_work_in_flight() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    router = echo_router()

    @router.message("work")
    async def work() -> str:
        started.set()
        await release.wait()
        return "finished while draining"

    server = TcpServer("127.0.0.1", 0)
    service = Microservice("svc", router, transports=[server])
    await service.start()
    async with TcpClient("127.0.0.1", server.port) as client:
        call = asyncio.ensure_future(client.send("work"))
        await asyncio.wait_for(started.wait(), 2)
        stopping = asyncio.ensure_future(service.stop())
        await wait_until(lambda: service.state is ServiceState.DRAINING)
        assert not stopping.done()
        release.set()
        assert await call == "finished while draining"
        await asyncio.wait_for(stopping, 2)
    assert service.state is ServiceState.STOPPED


async def test_a_start_that_fails_stops_what_started_and_exits_the_lifespan() -> None:
    journal: list[str] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        first = RecordingServer(journal, "first")
        service = Microservice(
            "svc",
            echo_router(),
            transports=[first, RecordingServer(journal, "second", port=taken)],
            lifespan=recording_lifespan(journal),
        )
        with pytest.raises(OSError, match="address already in use"):
            await service.start()
    assert journal == [
        "lifespan enter (starting)",
        "first starting",
        "first listening",
        "second starting",
        "first stopped",
        "lifespan exit (stopped)",
    ]
    assert service.state is ServiceState.STOPPED
    assert refuses_connections(first.port)
    await service.stop()  # stopping a failed service is harmless
    assert service.state is ServiceState.STOPPED


async def test_a_lifespan_that_fails_leaves_the_service_stopped_with_nothing_started() -> None:
    journal: list[str] = []

    @contextlib.asynccontextmanager
    async def broken(service: Microservice) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    service = Microservice(
        "svc", echo_router(), transports=[RecordingServer(journal, "a")], lifespan=broken
    )
    with pytest.raises(RuntimeError, match="database unreachable"):
        await service.start()
    assert journal == []
    assert service.state is ServiceState.STOPPED
    await service.stop()


async def test_a_service_cannot_start_twice() -> None:
    service = Microservice("svc", echo_router(), transports=[TcpServer("127.0.0.1", 0)])
    async with service:
        with pytest.raises(RuntimeError):
            await service.start()
    with pytest.raises(RuntimeError):
        await service.start()


async def test_transports_cannot_be_added_once_started() -> None:
    service = Microservice("svc", echo_router())
    service.add_transport(TcpServer("127.0.0.1", 0))
    async with service:
        with pytest.raises(RuntimeError):
            service.add_transport(TcpServer("127.0.0.1", 0))


async def test_stopping_a_service_that_never_started_is_harmless() -> None:
    journal: list[str] = []
    service = Microservice(
        "svc",
        echo_router(),
        transports=[RecordingServer(journal, "a")],
        lifespan=recording_lifespan(journal),
    )
    await service.stop()
    assert service.state is ServiceState.STOPPED
    assert journal == []


async def test_the_service_drain_timeout_overrides_the_transports() -> None:
    started = asyncio.Event()
    router = echo_router()

    @router.message("forever")
    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    server = TcpServer("127.0.0.1", 0, options=ServerOptions(drain_timeout=3600))
    service = Microservice("svc", router, transports=[server], drain_timeout=0.1)
    await service.start()
    async with TcpClient("127.0.0.1", server.port) as client:
        call = asyncio.ensure_future(client.send("forever"))
        await asyncio.wait_for(started.wait(), 2)
        await asyncio.wait_for(service.stop(), 2)
        with pytest.raises(ConnectionLost):
            await call
