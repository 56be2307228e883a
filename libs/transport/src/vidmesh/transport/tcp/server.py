"""The TCP listener: accepts connections, enforces the connection cap and timeouts, drains."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from vidmesh.transport.errors import CloseReason
from vidmesh.transport.identity import Admission
from vidmesh.transport.options import ServerOptions
from vidmesh.transport.routing import Router, RouteTable
from vidmesh.transport.tcp.connection import ServerConnection

logger = structlog.get_logger("vidmesh.transport.tcp")


class TcpServer:
    """Serves a :class:`RouteTable` over Nest's TCP framing; a transport of a Microservice.

    With ``allowed_peers`` (needs an ``ssl_context`` that requires client certificates:
    ``tls.server_context(..., client_ca=...)``) only peers whose certificate names one of them
    are served; the others are closed before any frame is read, and audited.
    """

    name = "tcp"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        options: ServerOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
        allowed_peers: Iterable[str] | None = None,
    ) -> None:
        if allowed_peers is not None and (
            ssl_context is None or ssl_context.verify_mode is not ssl.CERT_REQUIRED
        ):
            raise ValueError("allowed_peers needs an ssl_context that requires client certificates")
        self.host = host
        self.requested_port = port
        self.options = options or ServerOptions()
        self.ssl_context = ssl_context
        self.admission = None if allowed_peers is None else Admission(allowed_peers)
        self.table = RouteTable(Router())
        self.connections: set[ServerConnection] = set()
        self.incomplete_bytes = 0
        """Bytes held in incomplete frames by every connection (``max_incomplete_bytes``)."""
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._bound_port: int | None = None
        self._all_gone: asyncio.Future[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0); kept after the server stops."""
        return self.requested_port if self._bound_port is None else self._bound_port

    async def start(self, table: RouteTable) -> None:
        self.table = table
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerConnection(self),
            self.host,
            self.requested_port,
            ssl=self.ssl_context,
            backlog=self.options.backlog,
            reuse_address=True,
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = loop.create_task(self._sweep_forever())
        logger.info(
            "tcp_listening", host=self.host, port=self.port, tls=self.ssl_context is not None
        )

    def admit(self, connection: ServerConnection) -> bool:
        if len(self.connections) >= self.options.max_connections:
            return False
        self.connections.add(connection)
        return True

    def hold_incomplete(self, change: int) -> bool:
        """Count ``change`` more bytes held in incomplete frames; False if that passes the cap
        (the caller then closes its connection, which gives its bytes back)."""
        self.incomplete_bytes += change
        return change <= 0 or self.incomplete_bytes <= self.options.max_incomplete_bytes

    def admits_peer(self, peer: str, cert: Mapping[str, Any] | None) -> bool:
        """Whether the peer's certificate (the TLS handshake is over) names an allowed caller."""
        return self.admission is None or self.admission.check(peer, cert)

    def forget(self, connection: ServerConnection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_gone is not None and not self._all_gone.done():
            self._all_gone.set_result(None)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting and reading; wait for running handlers, then cancel what is left."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.stop_reading()
        tasks = {task for connection in self.connections for task in connection.tasks}
        if not tasks:
            return
        wait = self.options.drain_timeout if timeout is None else timeout
        _, unfinished = await asyncio.wait(tasks, timeout=wait)
        for task in unfinished:
            task.cancel()
        if unfinished:
            logger.warning("drain_cancelled_handlers", count=len(unfinished))
            await asyncio.wait(unfinished, timeout=1.0)

    async def stop(self) -> None:
        await self.drain()
        await asyncio.sleep(0)  # let answers scheduled by the last handlers be flushed
        for connection in list(self.connections):
            connection.close(CloseReason.SHUTDOWN)
        await self._wait_connections_gone(self.options.close_timeout)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._server is not None:
            await self._server.wait_closed()
        logger.info("tcp_stopped", port=self.port)

    async def _wait_connections_gone(self, timeout: float) -> None:
        """Let closing connections hand over their last answers; cut off those still open."""
        if not self.connections:
            return
        self._all_gone = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._all_gone), timeout)
        except TimeoutError:
            for connection in list(self.connections):
                connection.abort()
            await asyncio.sleep(0)  # let the aborted transports report connection_lost
        finally:
            self._all_gone = None

    async def _sweep_forever(self) -> None:
        interval = self._sweep_interval()
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def _sweep_interval(self) -> float:
        limits = [self.options.incomplete_frame_timeout, self.options.idle_timeout or 60.0]
        return max(0.02, min(1.0, min(limits) / 4))

    def sweep(self) -> None:
        """Close connections whose frame is not whole by its deadline, or idle past the limit."""
        now = asyncio.get_running_loop().time()
        for connection in list(self.connections):
            silent_for = now - connection.last_received
            if connection.has_partial_frame and not connection.reading_paused:
                # (While paused it is us who do not read the rest of the frame.)
                deadline = self.options.incomplete_frame_timeout
                if connection.partial_frame.overdue(now, deadline):
                    connection.close(CloseReason.INCOMPLETE_FRAME_TIMEOUT, abort=True)
            elif (
                self.options.idle_timeout is not None
                and not connection.tasks
                and silent_for > self.options.idle_timeout
            ):
                connection.close(CloseReason.IDLE_TIMEOUT)
