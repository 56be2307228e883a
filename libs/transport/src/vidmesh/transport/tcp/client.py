"""TcpClient: calls a Nest-compatible TCP service over one pipelined connection.

It connects on first use and again after the connection is lost; the connection itself
(requests matched by id, coalesced writes) is ``client_connection.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

from vidmesh.transport.errors import ServiceUnavailable
from vidmesh.transport.middleware import CallKind, ClientMiddleware, OutgoingCall, chain_client
from vidmesh.transport.options import ClientOptions
from vidmesh.transport.patterns import Pattern, route_of
from vidmesh.transport.tcp.client_connection import ClientConnection

_DEFAULT: Any = object()

TLS_CLOSE_TIMEOUT = 1.0
"""Seconds ``close()`` waits for a TLS connection's closing exchange with the peer."""


class TcpClient:
    """Calls a Nest-compatible TCP service, like Nest's ``ClientProxy`` for ``Transport.TCP``.

    Connects on first use and again after the connection is lost; calls in flight when it is
    lost fail with :class:`ConnectionLost`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        options: ClientOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        middleware: Sequence[ClientMiddleware] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or ClientOptions()
        self._ssl = ssl_context
        self._server_hostname = server_hostname
        self._connection: ClientConnection | None = None
        self._connecting: asyncio.Future[ClientConnection] | None = None
        self._closed = False
        self._chain = chain_client(middleware, self._dispatch) if middleware else None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        connection = self._connection
        return connection.in_flight if connection is not None and not connection.closed else 0

    async def connect(self) -> None:
        """Open the connection now instead of on the first call."""
        await self._open()

    async def send(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        timeout: float | None = _DEFAULT,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a request and return its answer (the last item, if the answer is a stream)."""
        if timeout is _DEFAULT:
            timeout = self.options.request_timeout
        if self._chain is not None:
            call = OutgoingCall(CallKind.REQUEST, pattern, data, dict(headers or {}), timeout)
            return await self._chain(call)
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._open()
        return await connection.request(pattern, data, timeout, headers)

    async def stream(
        self,
        pattern: Pattern,
        data: Any = None,
        *,
        timeout: float | None = _DEFAULT,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[Any]:
        """Send a request and yield each item of its streamed answer; ``timeout`` is per item."""
        if timeout is _DEFAULT:
            timeout = self.options.request_timeout
        call = OutgoingCall(CallKind.STREAM, pattern, data, dict(headers or {}), timeout)
        items: AsyncIterator[Any] = await (self._chain or self._dispatch)(call)
        async for item in items:
            yield item

    async def emit(
        self, pattern: Pattern, data: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        """Send an event (no answer). Returns once it is written to the socket."""
        call = OutgoingCall(CallKind.EVENT, pattern, data, dict(headers or {}), None)
        await (self._chain or self._dispatch)(call)

    async def _dispatch(self, call: OutgoingCall) -> Any:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._open()
        headers = call.headers or None
        if call.kind is CallKind.REQUEST:
            return await connection.request(call.pattern, call.data, call.timeout, headers)
        if call.kind is CallKind.STREAM:
            return connection.stream(call.pattern, call.data, call.timeout, headers)
        connection.emit(route_of(call.pattern), call.data, headers)
        await connection.flushed()
        return None

    async def _open(self) -> ClientConnection:
        if self._closed:
            raise ServiceUnavailable(f"client for {self.address} is closed")
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_future()
            try:
                self._connection = await self._connect_with_retries()
                self._connecting.set_result(self._connection)
            except asyncio.CancelledError:
                self._connecting.cancel()
                raise
            except Exception as error:
                self._connecting.set_exception(error)
                self._connecting.exception()  # a lone caller has nobody else to retrieve it
                raise
            finally:
                self._connecting = None
            return self._connection
        return await asyncio.shield(self._connecting)

    async def _connect_with_retries(self) -> ClientConnection:
        pause = self.options.reconnect_backoff
        attempts = max(1, self.options.connect_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return await self._connect_once()
            except (OSError, TimeoutError, ssl.SSLError) as error:
                if attempt == attempts:
                    raise ServiceUnavailable(
                        f"cannot connect to {self.address}: {error}"
                    ) from error
                await asyncio.sleep(pause)
                pause *= 2
        raise AssertionError("unreachable")

    async def _connect_once(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: ClientConnection(self.options, self.address),
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self._server_hostname if self._ssl else None,
            ),
            self.options.connect_timeout,
        )
        return connection

    async def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()
            if self._ssl is not None:
                # A TLS close is an exchange the loop runs: wait for it, or a loop closed right
                # after (a command's asyncio.run) leaves the socket open.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(connection.lost), TLS_CLOSE_TIMEOUT)

    async def __aenter__(self) -> TcpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
