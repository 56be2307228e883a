"""Real NestJS peers for the interop tests: one Nest TCP server per session, real sockets only.

The Nest server (``server.js``) and the Nest client (``client.js``) are the pinned
``@nestjs/microservices`` 11 run by Node.js; see ``vidmesh.devstack.nest``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from vidmesh.devstack.nest import nest_server, node_modules
from vidmesh.transport import TcpClient


@pytest.fixture(scope="session")
def nest_packages() -> Path:
    """The installed Nest packages (npm ci from the lockfile on first use, then cached)."""
    return node_modules()


@pytest.fixture(scope="session")
def nest_port(nest_packages: Path) -> Iterator[int]:
    """Port of a real Nest TCP microservice, shared by the whole session."""
    with nest_server() as port:
        yield port


@pytest.fixture
async def nest_client(nest_port: int) -> AsyncIterator[TcpClient]:
    """vidmesh's client, connected to the Nest server."""
    async with TcpClient("127.0.0.1", nest_port) as client:
        yield client


@dataclass
class RecordingProxy:
    """A TCP relay in front of the Nest server that keeps every byte clients sent through it."""

    port: int
    sent: bytearray = field(default_factory=bytearray)


@pytest.fixture
async def recording_proxy(nest_port: int) -> AsyncIterator[RecordingProxy]:
    """Relay 127.0.0.1:<proxy.port> to the Nest server, recording what goes towards Nest."""
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if record is not None:
                    record.extend(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def relay(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        nest_reader, nest_writer = await asyncio.open_connection("127.0.0.1", nest_port)
        writers.extend((client_writer, nest_writer))
        await asyncio.gather(
            pipe(client_reader, nest_writer, proxy.sent), pipe(nest_reader, client_writer, None)
        )

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    proxy = RecordingProxy(port=server.sockets[0].getsockname()[1])
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
