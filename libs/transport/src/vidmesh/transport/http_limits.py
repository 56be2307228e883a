"""HTTP/1.1 limits uvicorn has no setting for: a cap on a request's head (431), a deadline for
the head (408), an idle timeout for the body, and a lingering close after an early answer; and
uvicorn's ``limit_concurrency`` answered in the one JSON error shape (503, ``Retry-After``).

One subclass of uvicorn's httptools protocol, passed as ``http=`` to ``uvicorn.Config`` (see
:func:`limited_http_protocol`): we pin that implementation (httptools is a dependency) rather
than patch two. Every check is a few attribute reads per ``data_received``, and timers are armed
only when a head or a body spans several reads, so the common request (its head in one read)
costs no timer at all.

- **Head size.** The bytes of an unfinished head are counted per read and the finished head's
  URL and headers exactly; past ``max_head_bytes`` the answer is 431 (llhttp has no cap: a 16 MB
  header was accepted).
- **Head deadline.** A new connection, and a kept-alive one from the first byte of its next
  request, must deliver the whole head within ``head_timeout`` seconds (slowloris): 408, closed.
- **Body idle timeout.** While a request's body is arriving, ``body_idle_timeout`` seconds
  without a byte close the connection; the app sees a disconnect (an upload aborts). Time when
  *we* stopped reading (the app is busy with what came) does not count.
- **Lingering close.** An answer sent before the whole body arrived (an early 413 or 401) says
  ``connection: close``; the server then shuts down its write side and reads and discards what
  the client still sends, for at most ``linger_timeout`` seconds and ``linger_bytes`` bytes,
  then closes. A client that writes its whole body before reading (urllib, requests) thus
  reads the answer instead of a connection reset.
- **Send idle timeout.** A client that reads nothing of an answer for ``send_idle_timeout``
  seconds (our writes stay paused by backpressure) is closed, so a download nobody reads does
  not hold its connection, nor the store connection behind it, for ever.
- **Concurrency.** Past ``limit_concurrency`` open connections or requests in flight (uvicorn's
  setting and count), a new request gets 503 with ``Retry-After: 1``.

Every refusal is logged (``http_refused``) with the client's address.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast

import httptools
import orjson
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from vidmesh.transport.errors import status_error

logger = structlog.get_logger("vidmesh.transport.http_limits")

KiB: Final = 1024
MiB: Final = 1024 * KiB


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How the HTTP server protects itself from slow, greedy or stuck clients."""

    max_head_bytes: int = 16 * KiB
    """Request line plus headers; past it 431 (Node's and h11's default too)."""
    head_timeout: float = 5.0
    """Seconds from a request's first byte (or a new connection) to the end of its head."""
    body_idle_timeout: float = 30.0
    """Seconds a request body may stop arriving before the connection is closed."""
    linger_timeout: float = 10.0
    """Seconds a connection answered early keeps reading (and dropping) the rest of a body."""
    linger_bytes: int = 32 * MiB
    """Bytes a connection answered early reads (and drops) at most before it closes."""
    send_idle_timeout: float = 60.0
    """Seconds a client may read nothing of an answer (writing paused) before it is closed."""


class _Phase(enum.Enum):
    HEAD = enum.auto()  # waiting for, or reading, a request's head
    BODY = enum.auto()  # the head is in; the body (possibly empty) is not complete
    IDLE = enum.auto()  # the last request is complete; uvicorn's keep-alive timer runs


class _Refused(Exception):
    """Raised in a parser callback to stop parsing (llhttp then reports a callback error)."""


class _CycleTransport:
    """The transport a request's cycle writes to: a ``close`` after its answer goes through
    :meth:`LimitedHttpProtocol.close_after_response` (which may linger); the rest is the real
    transport's own bound methods, so writing costs nothing more."""

    __slots__ = ("_protocol", "is_closing", "write")

    def __init__(self, transport: asyncio.Transport, protocol: LimitedHttpProtocol) -> None:
        self.write = transport.write
        self.is_closing = transport.is_closing
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.close_after_response()


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HttpLimits` (``limits`` is set per server by
    :func:`limited_http_protocol`)."""

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own check answers in text/plain; ours (on_headers_complete) in the shape.
        self.limit_concurrency = None
        self._phase = _Phase.HEAD
        self._head_read = 0  # bytes of reads that ended inside the current head
        self._head_size = 0  # exact bytes of the current head's URL and headers
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_at = 0.0  # loop time of the last read in the body phase
        self._keep_alive = True  # what the client asked for, restored once the body is in
        self._stopping = False
        self._refusal: tuple[int, str] | None = None  # set when a head is refused
        self._lingering = False
        self._linger_left = 0
        self._linger_timer: asyncio.TimerHandle | None = None
        self._cycle_transport: _CycleTransport | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._send_paused_at = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._cycle_transport = _CycleTransport(transport, self)
        self._arm_head_timer()  # a new connection owes its first head within the deadline

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._linger_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._linger_timer = self._send_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        in_head = self._phase is _Phase.HEAD
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self.refuse(*self._refusal, linger=True)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._phase is _Phase.HEAD:
            if in_head:
                self._head_read += len(data)
                if self._head_read > self.limits.max_head_bytes:
                    self.refuse(431, "The request's headers are too large", linger=True)
                    return
            if self._head_timer is None:
                self._arm_head_timer()
        elif self._phase is _Phase.BODY:
            self._body_at = self.loop.time()
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self.limits.body_idle_timeout, self._on_body_idle
                )

    def shutdown(self) -> None:
        self._stopping = True
        super().shutdown()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._send_paused_at = self.loop.time()
        if self._send_timer is None:  # one timer at most, re-armed lazily: no churn per pause
            self._send_timer = self.loop.call_later(
                self.limits.send_idle_timeout, self._on_send_idle
            )

    def on_response_complete(self) -> None:
        if self._lingering:  # no keep-alive timer: the linger's own bounds close it
            self.server_state.total_requests += 1
            return
        super().on_response_complete()

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._phase = _Phase.HEAD
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        too_large = self._head_size > self.limits.max_head_bytes
        self._head_size = self._head_read = 0
        self._phase = _Phase.BODY
        if too_large:
            self._refusal = (431, "The request's headers are too large")
            raise _Refused
        limit = self.config.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            self._refusal = (503, "The server is busy: try again shortly")
            raise _Refused
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:
            return  # a WebSocket upgrade: not ours
        # An answer that starts before the whole body is in closes the connection (uvicorn
        # adds "connection: close"); on_message_complete restores what the client asked for.
        self._keep_alive = cycle.keep_alive
        cycle.keep_alive = False
        cycle.transport = cast(asyncio.Transport, self._cycle_transport)

    def on_message_complete(self) -> None:
        self._phase = _Phase.IDLE
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.keep_alive = self._keep_alive and not self._stopping
        super().on_message_complete()

    # -- closing ---------------------------------------------------------------------------------

    def close_after_response(self) -> None:
        """A request's cycle is done with the connection: linger if its body is still coming."""
        if self._phase is _Phase.BODY:
            self._linger()
        elif not self.transport.is_closing():
            self.transport.close()

    def refuse(self, status: int, message: str, *, linger: bool) -> None:
        """Answer ``status`` in the one JSON error shape and close (lingering if asked)."""
        if self.transport.is_closing():
            return
        body = orjson.dumps(status_error(status, message))
        head = [STATUS_LINE[status]]
        head.extend(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)
        if status == 503:
            head.append(b"retry-after: 1\r\n")
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        self.transport.write(b"".join(head) + body)
        logger.info("http_refused", status=status, reason=message, client=self.client)
        if linger:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        transport = self.transport
        if self._lingering or transport.is_closing():
            return
        if not transport.can_write_eof():  # TLS: no half-close
            transport.close()
            return
        self._lingering = True
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        self._unset_keepalive_if_required()
        transport.write_eof()  # after what is buffered: the client reads the answer, then EOF
        self.flow.resume_reading()
        self._linger_left = self.limits.linger_bytes
        self._linger_timer = self.loop.call_later(self.limits.linger_timeout, transport.close)

    # -- timers ----------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._on_head_timeout)

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self._phase is _Phase.HEAD and not self._lingering:
            self.refuse(408, "The request's headers did not arrive in time", linger=False)

    def _on_body_idle(self) -> None:
        self._body_timer = None
        if self._phase is not _Phase.BODY or self._lingering or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # we stopped reading: the wait is the app's, not the client's
            self._body_at = now
        left = self._body_at + self.limits.body_idle_timeout - now
        if left > 0:
            self._body_timer = self.loop.call_later(left, self._on_body_idle)
            return
        logger.info("http_body_stalled", client=self.client, path=self.scope.get("path"))
        self.transport.close()

    def _on_send_idle(self) -> None:
        self._send_timer = None
        if not self.flow.write_paused or self.transport.is_closing():
            return  # the client read since: the next pause arms a new timer
        left = self._send_paused_at + self.limits.send_idle_timeout - self.loop.time()
        if left > 0:
            self._send_timer = self.loop.call_later(left, self._on_send_idle)
            return
        logger.info("http_send_stalled", client=self.client, path=self.scope.get("path"))
        self.transport.abort()  # close() would wait for the buffer to flush: it never would


def limited_http_protocol(limits: HttpLimits) -> type[LimitedHttpProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` that applies ``limits``."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})
