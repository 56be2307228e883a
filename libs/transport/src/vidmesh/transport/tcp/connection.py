"""One accepted connection: feed the decoder, dispatch packets, write answers with backpressure.

Answers produced in one event-loop iteration are written together (one syscall), reading stops
while the peer is not reading its answers or has too many requests running, and a peer whose
unsent answers pass ``max_send_buffer`` is cut off, so memory stays bounded.

Pausing takes effect between two packets, not only between two reads: the packets left in a read
wait in a backlog, so one read full of small requests for big answers cannot run past
``max_in_flight_per_connection`` or pile up answers past ``write_buffer_high_water``. Unsent
answers are handed to the transport once they pass ``write_buffer_high_water`` (and one by one
while it is over it), so what a connection holds stays below ``max_send_buffer`` plus one answer.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import CoroutineType, GeneratorType
from typing import TYPE_CHECKING, Any, cast

import structlog
from vidmesh.transport.context import MessageContext, reset_current_context, set_current_context
from vidmesh.transport.errors import CloseReason, FrameError, RpcError
from vidmesh.transport.patterns import route_of_incoming
from vidmesh.transport.tcp import envelope
from vidmesh.transport.tcp.framing import FrameDecoder
from vidmesh.transport.tcp.partial_frame import PartialFrame

if TYPE_CHECKING:
    from vidmesh.transport.tcp.server import TcpServer

logger = structlog.get_logger("vidmesh.transport.tcp")

_PLAIN_JSON = frozenset({dict, list, str, int, float, bool, type(None)})


class ServerConnection(asyncio.Protocol):
    def __init__(self, server: TcpServer) -> None:
        self._server = server
        self._options = server.options
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(self._options.max_frame_length)
        self.partial_frame = PartialFrame()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        # Unsent bytes past which answers are written at once, not at the end of the iteration:
        # 0 while the transport is over its high-water mark, so each answer is checked.
        self._write_at = self._options.write_buffer_high_water
        self._flush_scheduled = False
        self._writes_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False  # no packet is dispatched while True
        self._transport_paused = False
        self._backlog: list[Any] = []  # packets read but held while reading is paused
        self._backlog_scheduled = False
        self._draining = False
        self._lost = False
        self._abort_timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._in_read = False  # dispatching a read: its answers are written when it ends
        self.peer = ""
        self.last_received = self._loop.time()
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        transport.set_write_buffer_limits(high=self._options.write_buffer_high_water)
        if not self._server.admit(self):
            self.close(CloseReason.TOO_MANY_CONNECTIONS, abort=True)
        elif not self._server.admits_peer(self.peer, transport.get_extra_info("peercert")):
            self.close(CloseReason.PEER_NOT_ADMITTED, abort=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = True
        self._backlog.clear()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._server.hold_incomplete(-self.partial_frame.release())
        self._server.forget(self)
        self._release_writers()

    def data_received(self, data: bytes) -> None:
        self.last_received = self._loop.time()
        try:
            packets = self._decoder.feed(data)
        except FrameError as error:
            # Answer what arrived whole before the bad frame, as Nest does, then hang up.
            self._dispatch_all(iter(error.packets))
            self.close(error.reason, detail=error.detail)
            return
        change = self.partial_frame.update(self._decoder, bool(packets), self.last_received)
        if not self._server.hold_incomplete(change):
            # Refused rather than held: what every connection holds stays under the cap.
            self.close(CloseReason.INCOMPLETE_BYTES_EXCEEDED, abort=True)
            return
        if self._backlog:  # read while paused (TLS may deliver what it already decrypted)
            self._backlog.extend(packets)
            return
        self._in_read = True
        try:
            self._dispatch_all(iter(packets))
        finally:
            self._in_read = False
        self._write_out()  # the answers of inline handlers: one write per read

    def _dispatch_all(self, packets: Iterator[Any]) -> None:
        for packet in packets:
            if self._reading_paused:
                # Too much in flight, or the peer is not reading its answers: hold the rest.
                self._backlog.append(packet)
                self._backlog.extend(packets)
                return
            if self.closed:
                return
            self._dispatch(packet)

    def _dispatch_backlog(self) -> None:
        self._backlog_scheduled = False
        if self.closed or self._reading_paused:
            return  # paused again: the next _update_reading schedules this again
        packets, self._backlog = self._backlog, []
        self._dispatch_all(iter(packets))
        self._update_reading()

    def pause_writing(self) -> None:
        self._writes_paused = True
        self._write_at = 0
        self._update_reading()

    def resume_writing(self) -> None:
        self._writes_paused = False
        self._write_at = self._options.write_buffer_high_water
        self._release_writers()
        self._update_reading()

    # -- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, packet: Any) -> None:
        if type(packet) is not dict:
            self.close(
                CloseReason.INVALID_PACKET, detail=f"a {type(packet).__name__}, not an object"
            )
            return
        request_id = packet.get("id")
        route = route_of_incoming(packet.get("pattern"))
        if request_id is None:
            self._dispatch_event(packet, route)
            return
        table = self._server.table
        call = table.direct.get(route)
        if call is not None:  # the fast path: nothing needs a MessageContext
            try:
                self._deliver(request_id, call(packet.get("data")), route)
            except Exception as error:
                self._answer_error(request_id, error, route)
            return
        invoke = table.messages.get(route)
        if invoke is None:
            self._send(envelope.no_handler_frame(request_id))
            return
        context = self._context(packet, route, request_id)
        token = set_current_context(context)  # copied into the task of an async handler
        try:
            self._deliver(request_id, invoke(context), route)
        except Exception as error:
            self._answer_error(request_id, error, route)
        finally:
            reset_current_context(token)

    def _context(self, packet: dict[str, Any], route: str, request_id: Any) -> MessageContext:
        return MessageContext(
            packet.get("pattern"),
            route,
            packet.get("data"),
            request_id,
            envelope.headers_of(packet),
            "tcp",
            self.peer,
        )

    def _deliver(self, request_id: Any, result: Any, route: str) -> None:
        if type(result) in _PLAIN_JSON:
            self._answer(request_id, result, route)
        elif type(result) is CoroutineType or inspect.isawaitable(result):
            self._spawn(self._answer_later(request_id, result, route))
        elif hasattr(result, "__aiter__"):
            self._spawn(self._answer_stream(request_id, result, route))
        elif type(result) is GeneratorType:
            self._answer_sync_stream(request_id, result)
        else:
            self._answer(request_id, result, route)

    def _dispatch_event(self, packet: dict[str, Any], route: str) -> None:
        handlers = self._server.table.events.get(route)
        if not handlers:
            logger.warning("no_event_handler", route=route, peer=self.peer)
            return
        context = self._context(packet, route, None)
        token = set_current_context(context)
        try:
            for invoke in handlers:
                self._run_event_handler(invoke, context)
        finally:
            reset_current_context(token)

    def _run_event_handler(self, invoke: Any, context: MessageContext) -> None:
        try:
            result = invoke(context)
        except Exception:
            logger.exception("event_handler_failed", route=context.route)
            return
        if inspect.isawaitable(result):
            self._spawn(self._finish_event(result, context.route))

    async def _finish_event(self, result: Awaitable[Any], route: str) -> None:
        try:
            await result
        except Exception:
            logger.exception("event_handler_failed", route=route)

    # -- answers ----------------------------------------------------------------------------

    def _answer(self, request_id: Any, value: Any, route: str) -> None:
        try:
            frame = envelope.response_frame(request_id, value)
        except TypeError as error:
            self._answer_error(request_id, error, route)
            return
        self._send(frame)

    def _answer_error(self, request_id: Any, error: Exception, route: str) -> None:
        if isinstance(error, RpcError):
            try:
                self._send(envelope.error_frame(request_id, error.error))
                return
            except TypeError as encode_error:
                error = encode_error
        logger.error(
            "handler_failed",
            route=route,
            peer=self.peer,
            exc_info=error,
        )
        self._send(envelope.error_frame(request_id, envelope.INTERNAL_ERROR))

    async def _answer_later(self, request_id: Any, pending: Awaitable[Any], route: str) -> None:
        try:
            value = await pending
        except Exception as error:
            self._answer_error(request_id, error, route)
            return
        self._answer(request_id, value, route)

    async def _answer_stream(self, request_id: Any, items: AsyncIterator[Any], route: str) -> None:
        try:
            async for item in items:
                if self.closed:  # the peer is gone: stop the generator instead of feeding nobody
                    aclose = getattr(items, "aclose", None)
                    if aclose is not None:
                        await aclose()
                    return
                self._send(envelope.stream_item_frame(request_id, item))
                if self._writes_paused:
                    await self._wait_for_drain()
        except Exception as error:
            self._answer_error(request_id, error, route)
            return
        self._send(envelope.end_of_stream_frame(request_id))

    def _answer_sync_stream(self, request_id: Any, items: Iterator[Any]) -> None:
        for item in items:
            if self.closed:  # e.g. cut off for not reading: stop the generator
                return
            self._send(envelope.stream_item_frame(request_id, item))
        self._send(envelope.end_of_stream_frame(request_id))

    # -- writing ----------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        if self.closed:
            return
        self._out.append(frame)
        self._out_size += len(frame)
        if self._out_size > self._write_at or (len(self.tasks) == 1 and not self._in_read):
            # Past the high-water mark, don't let answers pile up here; with only one handler
            # running there is nothing to wait for, so skip a loop iteration.
            self._write_out()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write_out()

    def _write_out(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        self._out_size = 0
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return
        # writelines, not a join: uvloop hands the answers to one writev without copying them
        # into one more buffer (chunks of video are frames of a third of a megabyte each).
        transport.writelines(out)
        if transport.get_write_buffer_size() > self._options.max_send_buffer:
            self.close(CloseReason.SEND_BUFFER_EXCEEDED, abort=True)

    async def _wait_for_drain(self) -> None:
        if self.closed:
            return
        if self._drained is None:
            self._drained = self._loop.create_future()
        await self._drained

    def _release_writers(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- flow control and lifecycle ---------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = self._loop.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        if len(self.tasks) >= self._options.max_in_flight_per_connection:
            self._update_reading()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self._reading_paused:
            self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self.closed:
            return
        overloaded = len(self.tasks) >= self._options.max_in_flight_per_connection
        pause = self._writes_paused or overloaded or self._draining
        self._reading_paused = pause
        if pause:
            if not self._transport_paused:
                self._transport_paused = True
                self.partial_frame.pause(self._loop.time())
                transport.pause_reading()
        elif self._backlog:
            if not self._backlog_scheduled:  # first the packets already read, then the socket
                self._backlog_scheduled = True
                self._loop.call_soon(self._dispatch_backlog)
        elif self._transport_paused:
            self._transport_paused = False
            self.last_received = self._loop.time()  # the silence while paused was ours
            self.partial_frame.resume(self.last_received)
            transport.resume_reading()

    def stop_reading(self) -> None:
        """Take no new messages from this peer; answers still go out (graceful drain)."""
        self._draining = True
        self._update_reading()

    @property
    def has_partial_frame(self) -> bool:
        return self._decoder.has_partial_frame

    @property
    def reading_paused(self) -> bool:
        """True while the socket is not read (backpressure or draining)."""
        return self._transport_paused

    @property
    def unsent_bytes(self) -> int:
        """Answers written to the transport that the peer has not taken yet."""
        transport = self._transport
        if transport is None or self._lost:
            return 0
        return transport.get_write_buffer_size() + self._out_size

    def close(self, reason: CloseReason, *, detail: str = "", abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        log = (
            logger.info
            if reason in (CloseReason.SHUTDOWN, CloseReason.IDLE_TIMEOUT)
            else logger.warning
        )
        log("connection_closed", reason=reason.value, detail=detail, peer=self.peer)
        self._backlog.clear()
        transport = self._transport
        if transport is None:
            return
        if abort:
            self._out.clear()
            self._out_size = 0
            transport.abort()
            return
        if self._out:
            transport.write(b"".join(self._out))
            self._out.clear()
            self._out_size = 0
        transport.close()
        if transport.get_write_buffer_size():
            # close() waits for the peer to take the rest; one that never reads is cut off.
            self._abort_timer = self._loop.call_later(self._options.close_timeout, self.abort)

    def abort(self) -> None:
        """Drop the connection now, unsent answers included."""
        self.closed = True
        self._backlog.clear()
        self._out.clear()
        self._out_size = 0
        if self._transport is not None and not self._lost:
            self._transport.abort()
