"""AsgiTransport: an ASGI app (FastAPI, Starlette) served by uvicorn inside a Microservice.

So one process can answer HTTP beside TCP and Kafka under one lifecycle, like Nest's hybrid
application: ready when every transport listens, drained together on SIGTERM. Needs the
``asgi`` extra (uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn
from vidmesh.transport.http_limits import HttpLimits, limited_http_protocol
from vidmesh.transport.routing import RouteTable

logger = structlog.get_logger("vidmesh.transport.asgi")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The Microservice owns SIGINT/SIGTERM and drains every transport itself.
        yield


class AsgiTransport:
    """Serve ``app`` on ``host:port`` with ``limits`` (http_limits.py); ``uvicorn_options`` go
    to ``uvicorn.Config`` (``limit_concurrency``, ``timeout_keep_alive``...)."""

    name = "asgi"

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        limits: HttpLimits | None = None,
        **uvicorn_options: Any,
    ) -> None:
        options = {
            "log_config": None,
            "timeout_graceful_shutdown": 30,
            "http": limited_http_protocol(limits or HttpLimits()),
            **uvicorn_options,
        }
        self._server = _EmbeddedServer(uvicorn.Config(app, host=host, port=port, **options))
        self._serving: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful after listening on port 0)."""
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    async def start(self, table: RouteTable) -> None:
        self._serving = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # startup failed: raise its error
                raise RuntimeError("the ASGI server stopped during startup")
            await asyncio.sleep(0.01)
        logger.info("asgi_listening", port=self.port)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting; uvicorn lets requests in flight finish, then runs the app's shutdown."""
        self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait({self._serving}, timeout=timeout)

    async def stop(self) -> None:
        await self.drain()
        if self._serving is not None and not self._serving.done():
            self._server.force_exit = True
            await self._serving
        self._serving = None
