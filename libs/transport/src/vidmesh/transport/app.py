"""Microservice: one lifecycle (start, ready, drain, stop) for a router served by transports.

Like Nest's hybrid application, one process can serve the same handlers over several transports
(TCP now; Kafka and an ASGI app join through the :class:`Transport` protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from typing import Protocol

import structlog
from vidmesh.transport.middleware import Middleware
from vidmesh.transport.routing import Router, RouteTable

logger = structlog.get_logger("vidmesh.transport")

Lifespan = Callable[["Microservice"], AbstractAsyncContextManager[None]]

SIGNAL_REPEAT_WINDOW = 1.0
"""Seconds after a stop signal in which another one is the same stop, not a harder one: a
terminal's Ctrl-C reaches the whole process group, and ``uv run`` forwards it to its child
too, so a service (or ``vidmesh up``) gets SIGINT twice at once."""


class ServiceState(StrEnum):
    CREATED = "created"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


class Transport(Protocol):
    """What a Microservice needs of a transport: start serving, stop taking work, stop."""

    name: str

    async def start(self, table: RouteTable) -> None: ...

    async def drain(self, timeout: float | None = None) -> None: ...

    async def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def _no_lifespan(service: Microservice) -> AsyncIterator[None]:
    yield


class Microservice:
    """Serves ``router`` over ``transports``; ``lifespan`` opens and closes shared resources.

    ``drain_timeout`` bounds how long ``stop`` waits for work in flight; None leaves it to each
    transport (a TcpServer's ``ServerOptions.drain_timeout``).
    """

    def __init__(
        self,
        name: str,
        router: Router,
        *,
        transports: Sequence[Transport] = (),
        middleware: Sequence[Middleware] = (),
        lifespan: Lifespan = _no_lifespan,
        drain_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.router = router
        self.transports = list(transports)
        self.middleware = list(middleware)
        self.drain_timeout = drain_timeout
        self.state = ServiceState.CREATED
        self._lifespan = lifespan
        self._lifespan_context: AbstractAsyncContextManager[None] | None = None
        self._ready = asyncio.Event()
        self._started: list[Transport] = []

    def add_transport(self, transport: Transport) -> None:
        if self.state is not ServiceState.CREATED:
            raise RuntimeError("transports must be added before the service starts")
        self.transports.append(transport)

    async def start(self) -> None:
        """Open the lifespan, then start every transport; READY once all of them listen."""
        if self.state is not ServiceState.CREATED:
            raise RuntimeError(f"cannot start a service that is {self.state.value}")
        self.state = ServiceState.STARTING
        lifespan = self._lifespan(self)
        try:
            await lifespan.__aenter__()
        except BaseException:
            self.state = ServiceState.STOPPED  # nothing started, nothing to exit
            raise
        self._lifespan_context = lifespan
        try:
            for transport in self.transports:
                # One table per transport: a handler is served only where it is declared.
                await transport.start(RouteTable(self.router, self.middleware, transport.name))
                self._started.append(transport)
        except BaseException:
            await self._shut_down()
            raise
        self.state = ServiceState.READY
        self._ready.set()
        logger.info(
            "service_ready", service=self.name, transports=[t.name for t in self.transports]
        )

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def drain(self) -> None:
        """Stop taking new work and let the work in flight finish (bounded by drain_timeout)."""
        if self.state is not ServiceState.READY:
            return
        self.state = ServiceState.DRAINING
        self._ready.clear()
        logger.info("service_draining", service=self.name)
        await asyncio.gather(*(t.drain(self.drain_timeout) for t in self._started))

    async def stop(self) -> None:
        """Drain, stop every transport, then close the lifespan."""
        if self.state in (ServiceState.CREATED, ServiceState.STOPPED):
            self.state = ServiceState.STOPPED
            return
        await self.drain()
        await self._shut_down()
        logger.info("service_stopped", service=self.name)

    async def _shut_down(self) -> None:
        for transport in reversed(self._started):
            try:
                await transport.stop()
            except Exception:
                logger.exception(
                    "transport_stop_failed", service=self.name, transport=transport.name
                )
        self._started.clear()
        self.state = ServiceState.STOPPED
        if self._lifespan_context is not None:
            context, self._lifespan_context = self._lifespan_context, None
            await context.__aexit__(None, None, None)

    async def serve(self) -> None:
        """Start, run until SIGINT or SIGTERM, then drain and stop. A repeat of the signal
        within ``SIGNAL_REPEAT_WINDOW`` changes nothing; one after it stops at once (the default
        handlers are back: KeyboardInterrupt, or the end of the process for SIGTERM)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        restore: list[asyncio.TimerHandle] = []

        def on_signal() -> None:
            if not stop.is_set():
                stop.set()
                restore.append(loop.call_later(SIGNAL_REPEAT_WINDOW, _default_handlers, loop))

        for signum in signals:
            loop.add_signal_handler(signum, on_signal)
        try:
            await self.start()
            await stop.wait()
        finally:
            try:
                await self.stop()
            finally:
                for timer in restore:
                    timer.cancel()
                _default_handlers(loop)

    def run(self) -> None:
        """Serve on uvloop (when installed) until a stop signal."""
        run_with_uvloop(self.serve)

    async def __aenter__(self) -> Microservice:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _default_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)


def run_with_uvloop(main: Callable[[], asyncio.Future[None] | object]) -> None:
    """Run ``main()`` on uvloop where it is installed, else on the default event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every POSIX platform
        asyncio.run(main())  # type: ignore[arg-type]
        return
    uvloop.run(main())  # type: ignore[arg-type]
