"""A started ``System`` driven from synchronous code (pytest fixtures, benchmarks): the system
runs on an event loop in a thread of its own, behind blocking methods."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import threading
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vidmesh.devstack.s3 import ObjectStore
from vidmesh.devstack.services import Ports
from vidmesh.devstack.supervisor import ChildState, LineSink

if TYPE_CHECKING:  # system.py re-exports this module's names: it is imported from there
    from vidmesh.devstack.system import ServiceStatus, System

_T = TypeVar("_T")


class RunningSystem:
    """A started ``System`` driven from synchronous code (a pytest fixture): every method
    blocks until the system's event loop thread has done it."""

    def __init__(self, system: System, loop: asyncio.AbstractEventLoop) -> None:
        self.system = system
        self._loop = loop

    @property
    def gateway_url(self) -> str:
        return self.system.gateway_url

    @property
    def tls_dir(self) -> Path | None:
        return self.system.tls_dir

    def client_tls(self, caller: str = "api-gateway") -> ssl.SSLContext | None:
        """A client context presenting ``caller``'s certificate; None with TLS off. Open raw TCP
        with it and ``server_hostname=<service name>`` (``"user"``)."""
        return self.system.client_tls(caller)

    def services(self) -> list[ServiceStatus]:
        return self.system.services()

    def service(self, name: str) -> ServiceStatus:
        return self.system.service(name)

    def pid(self, name: str) -> int | None:
        return self.system.service(name).pid

    def state(self, name: str) -> ChildState:
        return self.system.service(name).state

    def restarts(self, name: str) -> int:
        return self.system.service(name).restarts

    def logs(self, name: str) -> list[str]:
        return self.system.logs(name)

    def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        return self._call(self.system.kill(name, signum))

    def wait_ready(self, name: str | None = None, *, timeout: float = 60.0) -> None:
        self._call(self.system.wait_ready(name, timeout=timeout))

    def stop_broker(self) -> None:
        self._call(self.system.stop_broker())

    def start_broker(self) -> None:
        self._call(self.system.start_broker())

    @property
    def object_store(self) -> ObjectStore:
        return self.system.object_store

    @property
    def s3_endpoint(self) -> str:
        return self.system.s3_endpoint

    @property
    def s3_bucket(self) -> str:
        return self.system.s3_bucket

    def stop_object_store(self) -> None:
        self._call(self.system.stop_object_store())

    def start_object_store(self) -> None:
        self._call(self.system.start_object_store())

    def stop(self) -> None:
        self._call(self.system.stop())

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


@contextlib.contextmanager
def running_system(
    data_dir: str | os.PathLike[str],
    *,
    ports: Ports | None = None,
    postgres_url: str | None = None,
    kafka_bootstrap: str | None = None,
    object_store: ObjectStore | None = None,
    database_prefix: str = "",
    extra_env: Mapping[str, str] | None = None,
    on_line: LineSink | None = None,
    tls: bool = True,
) -> Iterator[RunningSystem]:
    """Start a ``System`` (see its arguments; by default on free ports, with mutual TLS between
    the services) on an event loop in a thread of its own, yield its blocking handle, stop it on
    exit."""
    from vidmesh.devstack.system import System

    system = System(
        data_dir,
        ports=ports or Ports.free(),
        postgres_url=postgres_url,
        kafka_bootstrap=kafka_bootstrap,
        object_store=object_store,
        database_prefix=database_prefix,
        extra_env=extra_env,
        on_line=on_line,
        tls=tls,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vidmesh-system", daemon=True)
    thread.start()
    handle = RunningSystem(system, loop)
    try:
        handle._call(system.__aenter__())
        try:
            yield handle
        finally:
            handle.stop()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
