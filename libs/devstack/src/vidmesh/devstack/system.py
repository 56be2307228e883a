"""The whole platform on one machine: what ``vidmesh up`` and the end-to-end tests run.

``System`` starts PostgreSQL (embedded, its data in ``<data_dir>/postgres``, or the server named by
a superuser URL) and a broker (an embedded tansu, or a given bootstrap address), makes each
service's role and database, migrates them with the command the images run (``python -m
<package> migrate``), then starts the four services as processes of their own (``python -m
<package> serve``) under a ``Supervisor``: user, video and analytics first, then the gateway.
Apps are started by module name and never imported here.

Passwords and JWT secrets are made once and kept in ``<data_dir>/secrets.json``, so data and
tokens survive a restart. ``running_system`` is the same thing for plain (synchronous) code: the
system runs on an event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vidmesh.devstack._process import LOOPBACK
from vidmesh.devstack.broker import TansuBroker
from vidmesh.devstack.databases import create_role_and_database
from vidmesh.devstack.postgres import EmbeddedPostgres
from vidmesh.devstack.probes import Probe, http_probe, tcp_health_probe
from vidmesh.devstack.services import (
    DRAIN_TIMEOUT,
    GATEWAY,
    SERVICES,
    TANSU_ANALYTICS_ENV,
    Ports,
    Secrets,
    Service,
    load_secrets,
)
from vidmesh.devstack.supervisor import (
    ChildFailed,
    ChildSpec,
    ChildState,
    EventSink,
    LineSink,
    RestartPolicy,
    Supervisor,
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    state: ChildState
    restarts: int


class StartupError(RuntimeError):
    """The platform could not be started."""


class System:
    """The four services with their database server and broker; ``async with System(...)``.

    ``postgres_url`` (a superuser URL) and ``kafka_bootstrap`` name existing servers to use
    instead of embedded ones. ``database_prefix`` goes before every role and database name, so
    several systems can share one server. ``extra_env`` is added to every service's environment
    (``VIDMESH_API_GATEWAY_MAX_UPLOAD_BYTES``...).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        ports: Ports | None = None,
        postgres_url: str | None = None,
        kafka_bootstrap: str | None = None,
        database_prefix: str = "",
        extra_env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
        on_event: EventSink | None = None,
        on_progress: Callable[[str], None] | None = None,
        policy: RestartPolicy | None = None,
        ready_timeout: float = 120.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.ports = ports or Ports()
        self._external_postgres = postgres_url
        self._external_kafka = kafka_bootstrap
        self._prefix = database_prefix
        self._extra_env = dict(extra_env or {})
        self._ready_timeout = ready_timeout
        self._on_progress = on_progress
        self._postgres: EmbeddedPostgres | None = None
        self._broker: TansuBroker | None = None
        self._broker_port: int | None = None
        self.secrets = Secrets()
        self.supervisor = Supervisor(
            policy=policy or RestartPolicy(),
            on_line=on_line,
            on_event=on_event,
            stop_timeout=DRAIN_TIMEOUT + 5.0,
        )

    # -- what callers read ------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.api_gateway}"

    @property
    def postgres_url(self) -> str:
        """The superuser URL of the database server in use."""
        if self._external_postgres is not None:
            return self._external_postgres
        if self._postgres is None:
            raise StartupError("the system is not running")
        return self._postgres.url

    @property
    def kafka_bootstrap(self) -> str:
        if self._external_kafka is not None:
            return self._external_kafka
        if self._broker_port is None:
            raise StartupError("the system is not running")
        return f"{LOOPBACK}:{self._broker_port}"

    @property
    def database_names(self) -> list[str]:
        """Every service's role and database name (they are the same)."""
        return [self._prefix + service.database for service in SERVICES]

    @property
    def embedded(self) -> tuple[bool, bool]:
        """Whether PostgreSQL and the broker (in that order) are ours rather than external."""
        return self._external_postgres is None, self._external_kafka is None

    @property
    def postgres_pid(self) -> int | None:
        """The embedded server's pid; None for an external one or while it is stopped."""
        postgres = self._postgres
        return postgres.pid if postgres is not None and postgres.running else None

    @property
    def broker_pid(self) -> int | None:
        """The embedded broker's pid; None for an external one or while it is stopped."""
        broker = self._broker
        return broker.pid if broker is not None and broker.running else None

    def services(self) -> list[ServiceStatus]:
        """Each service's port, pid, state and restart count, in start order."""
        return [self.service(service.name) for service in SERVICES]

    def service(self, name: str) -> ServiceStatus:
        port = self.ports.of(name)
        child = self.supervisor.children.get(name)
        if child is None:
            return ServiceStatus(name, port, None, ChildState.STOPPED, 0)
        return ServiceStatus(name, port, child.pid, child.state, child.restarts)

    def logs(self, name: str) -> list[str]:
        """The service's last output lines (up to 200)."""
        child = self.supervisor.children.get(name)
        return [] if child is None else list(child.tail)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Servers, roles and databases, migrations, then the services; returns once all four
        are ready (StartupError if one is not within ``ready_timeout``)."""
        _refuse_taken_ports(self.ports)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.secrets = load_secrets(self.data_dir / "secrets.json", self.database_names)
        await asyncio.gather(self._start_postgres(), self._start_embedded_broker())
        urls = {service.name: await self._create_database(service) for service in SERVICES}
        self._progress(f"roles and databases ready: {', '.join(self.database_names)}")
        envs = {service.name: self._env(service, urls[service.name]) for service in SERVICES}
        await asyncio.gather(*(self._migrate(service, envs[service.name]) for service in SERVICES))
        self._progress("migrations done; starting user, video and analytics, then the gateway")
        backends = [self._spec(service, envs[service.name]) for service in SERVICES[:-1]]
        try:
            await self.supervisor.start(*backends, ready_timeout=self._ready_timeout)
            gateway = self._spec(SERVICES[-1], envs[GATEWAY])
            await self.supervisor.start(gateway, ready_timeout=self._ready_timeout)
        except ChildFailed as error:
            raise StartupError(str(error)) from error

    async def stop(self) -> None:
        """The gateway, then the other services (each drains), then the broker and database.
        Idempotent."""
        await self.supervisor.stop()
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await asyncio.to_thread(broker.stop)
        if self._postgres is not None:
            postgres, self._postgres = self._postgres, None
            await asyncio.to_thread(postgres.stop)

    async def __aenter__(self) -> System:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- operations (tests, chaos) --------------------------------------------------------------

    async def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Signal a service's processes and wait until it has exited; the supervisor then
        restarts it. Returns the pid that was killed."""
        return await self.supervisor[name].kill(signum)

    async def wait_ready(self, name: str | None = None, *, timeout: float = 60.0) -> None:
        """Wait until that service (or every service) is ready again."""
        names = [name] if name is not None else [service.name for service in SERVICES]
        await asyncio.gather(*(self.supervisor[n].wait_ready(timeout) for n in names))

    async def stop_broker(self) -> None:
        """Stop the embedded broker (the services stay up and retry)."""
        broker = self._embedded_broker()
        await asyncio.to_thread(broker.stop)

    async def start_broker(self) -> None:
        """Start the embedded broker again on the same port; it comes back empty."""
        self._embedded_broker()
        self._broker = TansuBroker(port=self._broker_port)
        await asyncio.to_thread(self._broker.start)

    # -- the steps -------------------------------------------------------------------------------

    def _embedded_broker(self) -> TansuBroker:
        if self._broker is None:
            raise StartupError("the broker is external or the system is not running")
        return self._broker

    def _progress(self, text: str) -> None:
        if self._on_progress is not None:
            self._on_progress(text)

    async def _start_postgres(self) -> None:
        if self._external_postgres is not None:
            self._progress("using the PostgreSQL server given")
            return
        self._postgres = EmbeddedPostgres(self.data_dir / "postgres")
        await asyncio.to_thread(self._postgres.start)
        new = "a new cluster" if self._postgres.initialized_cluster else "kept data"
        self._progress(
            f"PostgreSQL ready on port {self._postgres.port} ({new} in {self._postgres.data_dir})"
        )

    async def _start_embedded_broker(self) -> None:
        if self._external_kafka is not None:
            self._progress(f"using the Kafka broker at {self._external_kafka}")
            return
        self._broker = TansuBroker()
        await asyncio.to_thread(self._broker.start)
        self._broker_port = self._broker.port
        self._progress(f"broker (tansu, in memory) ready on port {self._broker_port}")

    async def _create_database(self, service: Service) -> str:
        name = self._prefix + service.database
        return await create_role_and_database(self.postgres_url, name, self.secrets.passwords[name])

    async def _migrate(self, service: Service, env: Mapping[str, str]) -> None:
        """``python -m <package> migrate`` with the service's environment."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            service.package,
            "migrate",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
        )
        output, _ = await process.communicate()
        lines = output.decode("utf-8", "replace").splitlines()
        on_line = self.supervisor.on_line
        if on_line is not None:
            for line in lines:
                on_line(service.name, line)
        if process.returncode != 0:
            tail = "\n".join(lines[-30:])
            raise StartupError(f"{service.name}: migrate exited with {process.returncode}:\n{tail}")

    def _env(self, service: Service, database_url: str) -> dict[str, str]:
        prefix = service.env_prefix
        env = dict(os.environ)
        env.setdefault(f"{prefix}DRAIN_TIMEOUT", str(DRAIN_TIMEOUT))
        env |= {
            "PYTHONUNBUFFERED": "1",  # lines reach the supervisor as they are written
            f"{prefix}HOST": LOOPBACK,
            f"{prefix}PORT": str(self.ports.of(service.name)),
            f"{prefix}DATABASE_URL": database_url,
        }
        if service.uses_kafka:
            env[f"{prefix}KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if service.name == "analytics" and self._external_kafka is None:
            env |= TANSU_ANALYTICS_ENV
        if service.name == GATEWAY:
            env |= self._gateway_env(prefix)
        return env | self._extra_env

    def _gateway_env(self, prefix: str) -> dict[str, str]:
        return {
            f"{prefix}USER_ADDRESS": f"{LOOPBACK}:{self.ports.user}",
            f"{prefix}VIDEO_ADDRESS": f"{LOOPBACK}:{self.ports.video}",
            f"{prefix}ANALYTICS_ADDRESS": f"{LOOPBACK}:{self.ports.analytics}",
            f"{prefix}JWT_ACCESS_SECRET": self.secrets.jwt_access_secret,
            f"{prefix}JWT_REFRESH_SECRET": self.secrets.jwt_refresh_secret,
        }

    def _spec(self, service: Service, env: Mapping[str, str]) -> ChildSpec:
        port = self.ports.of(service.name)
        probe: Probe
        if service.name == GATEWAY:
            probe = http_probe(f"http://{LOOPBACK}:{port}/healthz")
        else:
            probe = tcp_health_probe(LOOPBACK, port)
        argv = (sys.executable, "-m", service.package, "serve")
        return ChildSpec(service.name, argv, env=env, probe=probe)


def _refuse_taken_ports(ports: Ports) -> None:
    """Fail fast, rather than restart a service that cannot bind its port for ever."""
    for service in SERVICES:
        port = ports.of(service.name)
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError as error:
                raise StartupError(
                    f"port {port} ({service.name}) is taken: is vidmesh already running? "
                    f"({error.strerror}; --port-base picks other ports)"
                ) from None


class RunningSystem:
    """A started ``System`` driven from synchronous code (a pytest fixture): every method
    blocks until the system's event loop thread has done it."""

    def __init__(self, system: System, loop: asyncio.AbstractEventLoop) -> None:
        self.system = system
        self._loop = loop

    @property
    def gateway_url(self) -> str:
        return self.system.gateway_url

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
    database_prefix: str = "",
    extra_env: Mapping[str, str] | None = None,
    on_line: LineSink | None = None,
) -> Iterator[RunningSystem]:
    """Start a ``System`` (see its arguments; by default on free ports) on an event loop in a
    thread of its own, yield its blocking handle, stop it on exit."""
    system = System(
        data_dir,
        ports=ports or Ports.free(),
        postgres_url=postgres_url,
        kafka_bootstrap=kafka_bootstrap,
        database_prefix=database_prefix,
        extra_env=extra_env,
        on_line=on_line,
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
