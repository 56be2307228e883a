"""Real servers for tests: a Microservice on a free loopback port and a client for it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidmesh.transport.app import Microservice
from vidmesh.transport.context import Context
from vidmesh.transport.middleware import ClientMiddleware, Middleware
from vidmesh.transport.options import ClientOptions, ServerOptions
from vidmesh.transport.routing import Router
from vidmesh.transport.tcp.client import TcpClient
from vidmesh.transport.tcp.server import TcpServer


@dataclass
class ServedTcp:
    service: Microservice
    server: TcpServer
    client: TcpClient

    @property
    def port(self) -> int:
        return self.server.port


@contextlib.asynccontextmanager
async def serve_tcp(
    router: Router,
    *,
    options: ServerOptions | None = None,
    middleware: Sequence[Middleware] = (),
    server_ssl: ssl.SSLContext | None = None,
    client_ssl: ssl.SSLContext | None = None,
    allowed_peers: Sequence[str] | None = None,
    client_options: ClientOptions | None = None,
    client_middleware: Sequence[ClientMiddleware] = (),
) -> AsyncIterator[ServedTcp]:
    """Serve ``router`` on 127.0.0.1 (port chosen by the OS) with a client connected to it."""
    server = TcpServer(
        "127.0.0.1", 0, options=options, ssl_context=server_ssl, allowed_peers=allowed_peers
    )
    service = Microservice("test", router, transports=[server], middleware=middleware)
    async with service:
        client = TcpClient(
            "127.0.0.1",
            server.port,
            options=client_options,
            ssl_context=client_ssl,
            server_hostname="localhost" if client_ssl else None,
            middleware=client_middleware,
        )
        try:
            yield ServedTcp(service, server, client)
        finally:
            await client.close()


def echo_router() -> Router:
    """A router answering ``echo`` (the payload back) and ``peer`` (the caller's address)."""
    router = Router()

    @router.message("echo")
    def echo(data: Any) -> Any:
        return data

    @router.message("peer")
    async def peer(context: Context) -> str | None:
        return context.peer

    return router


async def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until it holds; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:  # polling on purpose: the conditions are plain attributes, not events
            if condition():
                return
            await asyncio.sleep(0.005)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """Everything a raw peer receives until the server closes the connection (FIN or RST)."""
    chunks = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(64 * 1024)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
