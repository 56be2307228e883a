"""A pipelined TCP client: one connection, many requests in flight, answers matched by id.

Frames queued in one event-loop iteration go out in one write; ids are a per-connection counter
(they only need to be unique on the connection); timeouts are timer handles, not tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import structlog
from vidmesh.transport.errors import (
    ConnectionLost,
    FrameError,
    RemoteError,
    RequestTimeout,
    ServiceUnavailable,
)
from vidmesh.transport.middleware import CallKind, ClientMiddleware, OutgoingCall, chain_client
from vidmesh.transport.options import ClientOptions
from vidmesh.transport.patterns import Pattern, route_of
from vidmesh.transport.tcp import envelope
from vidmesh.transport.tcp.framing import FrameDecoder

logger = structlog.get_logger("vidmesh.transport.tcp")

_DEFAULT: Any = object()
_END = object()


class _Stream:
    """Items of one streamed answer, waiting to be read."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def push(self, item: Any) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class ClientConnection(asyncio.Protocol):
    """One open connection of a :class:`TcpClient`; replaced by a new one after it closes."""

    def __init__(self, options: ClientOptions, address: str) -> None:
        self._options = options
        self._address = address
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(options.max_frame_length)
        self._transport: asyncio.Transport | None = None
        self._ids = itertools.count(1)
        self._calls: dict[str, asyncio.Future[Any]] = {}
        self._partial: dict[str, Any] = {}
        self._streams: dict[str, _Stream] = {}
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._writes_paused = False
        self._drained: asyncio.Future[None] | None = None
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self._calls) + len(self._streams)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self._options.write_buffer_high_water)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(ConnectionLost(f"connection to {self._address} closed: {exc or 'by peer'}"))

    def pause_writing(self) -> None:
        self._writes_paused = True

    def resume_writing(self) -> None:
        self._writes_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def data_received(self, data: bytes) -> None:
        try:
            packets = self._decoder.feed(data)
        except FrameError as error:
            logger.warning(
                "bad_frame_from_server", address=self._address, reason=error.reason.value
            )
            self._fail_all(ConnectionLost(f"bad frame from {self._address}: {error}"))
            return
        for packet in packets:
            if type(packet) is dict:
                try:
                    self._on_packet(packet)
                except TypeError:  # an unhashable "id" is none of our calls: ignored, as by Nest
                    continue

    def _on_packet(self, packet: dict[str, Any]) -> None:
        request_id = packet.get("id")
        call = self._calls.get(request_id)  # type: ignore[arg-type]
        if call is not None:
            error = packet.get("err")
            if error is not None:
                del self._calls[request_id]  # type: ignore[arg-type]
                self._partial.pop(request_id, None)  # type: ignore[arg-type]
                if not call.done():
                    call.set_exception(RemoteError(error))
            elif packet.get("isDisposed"):
                del self._calls[request_id]  # type: ignore[arg-type]
                last = self._partial.pop(request_id, None) if self._partial else None  # type: ignore[arg-type]
                if not call.done():
                    call.set_result(packet.get("response", last))
            else:
                self._partial[request_id] = packet.get("response")  # type: ignore[index]
            return
        stream = self._streams.get(request_id)  # type: ignore[arg-type]
        if stream is None:
            return  # the caller gave up (timeout or cancel); the late answer is dropped
        error = packet.get("err")
        if error is not None:
            stream.push(RemoteError(error))
        else:
            if "response" in packet:
                stream.push(packet["response"])
            if packet.get("isDisposed"):
                stream.push(_END)

    # -- calls ------------------------------------------------------------------------------

    async def request(
        self, pattern: Any, data: Any, timeout: float | None, headers: dict[str, str] | None
    ) -> Any:
        request_id = str(next(self._ids))
        call: asyncio.Future[Any] = self._loop.create_future()
        self._calls[request_id] = call
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, self._expire, request_id, timeout)
        try:
            if self._writes_paused:
                await self._wait_for_drain()
            self._send(envelope.request_frame(pattern, data, request_id, headers))
            return await call
        finally:
            if timer is not None:
                timer.cancel()
            if request_id in self._calls:
                del self._calls[request_id]
                self._partial.pop(request_id, None)

    def _expire(self, request_id: str, timeout: float) -> None:
        call = self._calls.pop(request_id, None)
        self._partial.pop(request_id, None)
        if call is not None and not call.done():
            call.set_exception(RequestTimeout(f"no answer from {self._address} in {timeout}s"))

    async def stream(
        self, pattern: Any, data: Any, timeout: float | None, headers: dict[str, str] | None
    ) -> AsyncIterator[Any]:
        request_id = str(next(self._ids))
        stream = _Stream()
        self._streams[request_id] = stream
        try:
            if self._writes_paused:
                await self._wait_for_drain()
            self._send(envelope.request_frame(pattern, data, request_id, headers))
            while True:
                while not stream.items:
                    stream.waiter = self._loop.create_future()
                    try:
                        await asyncio.wait_for(stream.waiter, timeout)
                    except TimeoutError:
                        raise RequestTimeout(
                            f"no item from {self._address} in {timeout}s"
                        ) from None
                item = stream.items.popleft()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._streams.pop(request_id, None)

    def emit(self, route: str, data: Any, headers: dict[str, str] | None) -> None:
        self._send(envelope.event_frame(route, data, headers))

    async def flushed(self) -> None:
        """Wait until queued frames are handed to the socket and it has room again."""
        while self._flush_scheduled or self._writes_paused:
            if self.closed:
                raise ConnectionLost(f"connection to {self._address} closed")
            if self._writes_paused:
                await self._wait_for_drain()
            else:
                await asyncio.sleep(0)

    # -- writing and closing ----------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionLost(f"connection to {self._address} closed")
        self._out.append(frame)
        if self._flush_scheduled:
            return
        if len(self._out) == 1 and len(self._calls) + len(self._streams) <= 1:
            self._flush()  # the only call in flight: nothing to coalesce with, write now
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self._transport is None:
            return
        out, self._out = self._out, []
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def _wait_for_drain(self) -> None:
        if self._drained is None:
            self._drained = self._loop.create_future()
        await self._drained

    def _fail_all(self, error: ConnectionLost) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
        calls, self._calls = self._calls, {}
        self._partial.clear()
        for call in calls.values():
            if not call.done():
                call.set_exception(error)
        for stream in self._streams.values():
            stream.push(error)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(error)

    def close(self) -> None:
        if self.closed:
            return
        if self._out and self._transport is not None:
            self._transport.write(b"".join(self._out))
            self._out.clear()
        self.closed = True
        if self._transport is not None:
            self._transport.close()


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
            self._connection.close()
            self._connection = None

    async def __aenter__(self) -> TcpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
