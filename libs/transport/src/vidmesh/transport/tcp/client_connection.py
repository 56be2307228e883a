"""One open connection of a TcpClient: requests in flight matched by id, coalesced writes.

Frames queued in one event-loop iteration go out in one write (the only call in flight is
written at once); ids are a per-connection counter (they only need to be unique on the
connection); timeouts are timer handles, not tasks.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import structlog
from vidmesh.transport.errors import ConnectionLost, FrameError, RemoteError, RequestTimeout
from vidmesh.transport.options import ClientOptions
from vidmesh.transport.tcp import envelope
from vidmesh.transport.tcp.framing import FrameDecoder

logger = structlog.get_logger("vidmesh.transport.tcp")

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
        self.lost: asyncio.Future[None] = self._loop.create_future()
        """Done once the transport is gone (after a TLS close, the peer's close_notify too)."""

    @property
    def in_flight(self) -> int:
        return len(self._calls) + len(self._streams)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=self._options.write_buffer_high_water)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
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
        # writelines, not a join: uvloop hands the frames to one writev without copying them
        # into one more buffer (chunks of video are frames of a third of a megabyte each).
        self._transport.writelines(out)

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
