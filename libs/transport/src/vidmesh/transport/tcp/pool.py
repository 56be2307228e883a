"""Several connections to one address behind one client.

Behind a load-balanced address (a Kubernetes Service, say) each connection may land on a
different replica; each call goes to the connection with the fewest calls in flight.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

from vidmesh.transport.middleware import CallKind, ClientMiddleware, OutgoingCall, chain_client
from vidmesh.transport.options import ClientOptions
from vidmesh.transport.patterns import Pattern
from vidmesh.transport.tcp.client import _DEFAULT, TcpClient


class TcpClientPool:
    """The :class:`TcpClient` interface over ``size`` connections."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        size: int = 4,
        options: ClientOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        middleware: Sequence[ClientMiddleware] = (),
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.options = options or ClientOptions()
        self.clients = [
            TcpClient(
                host,
                port,
                options=self.options,
                ssl_context=ssl_context,
                server_hostname=server_hostname,
            )
            for _ in range(size)
        ]
        self._turn = -1
        self._chain = chain_client(middleware, self._dispatch)

    def _least_busy(self) -> TcpClient:
        # Ties go round-robin: calls made while the connections are still opening (where
        # in_flight is 0 for all) must not all pile onto the first one.
        clients = self.clients
        self._turn = turn = (self._turn + 1) % len(clients)
        best = clients[turn]
        load = best.in_flight
        if load:
            for client in clients:
                busy = client.in_flight
                if busy < load:
                    best, load = client, busy
                    if not busy:
                        break
        return best

    async def connect(self) -> None:
        await asyncio.gather(*(client.connect() for client in self.clients))

    async def send(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        timeout: float | None = _DEFAULT,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if timeout is _DEFAULT:
            timeout = self.options.request_timeout
        return await self._chain(
            OutgoingCall(CallKind.REQUEST, pattern, data, dict(headers or {}), timeout)
        )

    async def stream(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        timeout: float | None = _DEFAULT,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[Any]:
        if timeout is _DEFAULT:
            timeout = self.options.request_timeout
        call = OutgoingCall(CallKind.STREAM, pattern, data, dict(headers or {}), timeout)
        items: AsyncIterator[Any] = await self._chain(call)
        async for item in items:
            yield item

    async def emit(
        self, pattern: Pattern, data: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        await self._chain(OutgoingCall(CallKind.EVENT, pattern, data, dict(headers or {}), None))

    async def _dispatch(self, call: OutgoingCall) -> Any:
        client = self._least_busy()
        headers = call.headers or None
        if call.kind is CallKind.REQUEST:
            return await client.send(call.pattern, call.data, timeout=call.timeout, headers=headers)
        if call.kind is CallKind.STREAM:
            return client.stream(call.pattern, call.data, timeout=call.timeout, headers=headers)
        return await client.emit(call.pattern, call.data, headers=headers)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    async def __aenter__(self) -> TcpClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
