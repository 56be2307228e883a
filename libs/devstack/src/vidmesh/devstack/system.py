"""The whole platform on one machine: what ``vidmesh up`` and the end-to-end tests run.

``System`` starts PostgreSQL (embedded, its data in ``<data_dir>/postgres``, or the server named by
a superuser URL), a broker (an embedded tansu, or a given bootstrap address) and an S3 object
store (an embedded SeaweedFS, its data in ``<data_dir>/objectstore``, or a given store: see
``object_storage.py``), makes each service's role and database, migrates them with the command
the images run (``python -m <package> migrate``), then starts the four services as processes of
their own (``python -m <package> serve``) under a ``Supervisor``: user, video and analytics
first, then the gateway. Apps are started by module name and never imported here (how each is
launched: ``launch.py``).

Passwords, JWT secrets and S3 keys are made once and kept in ``<data_dir>/secrets.json``, so data
and tokens survive a restart. So are the services' identities: a local CA and one certificate per
service in ``<data_dir>/tls`` (``certs.py``), which the services present to each other over mutual
TLS (``tls=False`` runs them on plain TCP). ``running_system`` (``running.py``, also importable
from here) is the same thing for plain (synchronous) code: the system runs on an event loop in a
thread of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vidmesh.devstack._process import LOOPBACK
from vidmesh.devstack.broker import TansuBroker
from vidmesh.devstack.certs import Certificates, ensure_certificates
from vidmesh.devstack.databases import create_role_and_database
from vidmesh.devstack.launch import Wiring, child_spec, migrate, service_env
from vidmesh.devstack.object_storage import DEFAULT_BUCKET, ObjectStorage
from vidmesh.devstack.postgres import EmbeddedPostgres
from vidmesh.devstack.running import RunningSystem as RunningSystem
from vidmesh.devstack.running import running_system as running_system
from vidmesh.devstack.s3 import ObjectStore, bucket_name
from vidmesh.devstack.services import (
    DRAIN_TIMEOUT,
    GATEWAY,
    SERVICES,
    Ports,
    Secrets,
    Service,
    load_secrets,
)
from vidmesh.devstack.supervisor import (
    ChildFailed,
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
    """The four services with their database server, broker and object store;
    ``async with System(...)``.

    ``postgres_url`` (a superuser URL), ``kafka_bootstrap`` and ``object_store`` name existing
    servers to use instead of embedded ones. ``database_prefix`` goes before every role and
    database name, and before the bucket's name (``e2e_1a2b_`` -> ``e2e-1a2b-vidmesh-videos``),
    so several systems can share one server. ``s3_public_endpoint``: the store's endpoint in
    URLs handed to browsers, if not its own. ``extra_env`` is added to every service's
    environment (``VIDMESH_API_GATEWAY_MAX_UPLOAD_BYTES``...). ``tls``: the services talk mutual
    TLS with certificates in ``<data_dir>/tls`` (``client_tls()`` calls them as one of them).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        ports: Ports | None = None,
        postgres_url: str | None = None,
        kafka_bootstrap: str | None = None,
        object_store: ObjectStore | None = None,
        s3_bucket: str = DEFAULT_BUCKET,
        s3_public_endpoint: str | None = None,
        database_prefix: str = "",
        extra_env: Mapping[str, str] | None = None,
        on_line: LineSink | None = None,
        on_event: EventSink | None = None,
        on_progress: Callable[[str], None] | None = None,
        policy: RestartPolicy | None = None,
        ready_timeout: float = 120.0,
        tls: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.tls = tls
        self.certificates: Certificates | None = None
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
        self.storage = ObjectStorage(
            self.data_dir,
            external=object_store,
            bucket=bucket_name(database_prefix, s3_bucket) if database_prefix else s3_bucket,
            public_endpoint=s3_public_endpoint,
        )
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
    def tls_dir(self) -> Path | None:
        """The CA (``ca.crt``) and each service's ``<name>/tls.crt``, ``tls.key`` and ``ca.crt``;
        None with TLS off."""
        return self.data_dir / "tls" if self.tls else None

    def client_tls(self, caller: str = GATEWAY) -> ssl.SSLContext | None:
        """A client context presenting ``caller``'s certificate (pass the service's name as
        ``server_hostname``); None with TLS off."""
        if self.certificates is None:
            return None
        return self.certificates.client_context(caller)

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
    def object_store(self) -> ObjectStore:
        """Endpoint, region and keys of the object store in use."""
        return self.storage.access

    @property
    def s3_endpoint(self) -> str:
        return self.storage.access.endpoint

    @property
    def s3_bucket(self) -> str:
        """The video service's bucket (its ``migrate`` makes it)."""
        return self.storage.bucket

    @property
    def database_names(self) -> list[str]:
        """Every service's role and database name (they are the same)."""
        return [self._prefix + service.database for service in SERVICES]

    @property
    def embedded(self) -> tuple[bool, bool, bool]:
        """Whether PostgreSQL, the broker and the object store (in that order) are ours rather
        than external."""
        return self._external_postgres is None, self._external_kafka is None, self.storage.embedded

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

    @property
    def object_store_pid(self) -> int | None:
        """The embedded object store's pid; None for an external one or while it is stopped."""
        return self.storage.pid

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
        if self.tls_dir is not None:
            names = [service.name for service in SERVICES]
            self.certificates = await asyncio.to_thread(ensure_certificates, self.tls_dir, names)
        await asyncio.gather(
            self._start_postgres(), self._start_embedded_broker(), self._start_object_store()
        )
        urls = {service.name: await self._create_database(service) for service in SERVICES}
        self._progress(f"roles and databases ready: {', '.join(self.database_names)}")
        wiring = self._wiring()
        envs = {s.name: service_env(s, urls[s.name], wiring) for s in SERVICES}
        await asyncio.gather(*(self._migrate(service, envs[service.name]) for service in SERVICES))
        self._progress("migrations done; starting user, video and analytics, then the gateway")
        specs = [
            child_spec(s, envs[s.name], self.ports.of(s.name), self.certificates) for s in SERVICES
        ]
        try:
            await self.supervisor.start(*specs[:-1], ready_timeout=self._ready_timeout)
            gateway = specs[-1]
            await self.supervisor.start(gateway, ready_timeout=self._ready_timeout)
        except ChildFailed as error:
            raise StartupError(str(error)) from error

    async def stop(self) -> None:
        """The gateway, then the other services (each drains), then the broker, object store
        and database, side by side. Idempotent."""
        await self.supervisor.stop()
        broker, self._broker = self._broker, None
        postgres, self._postgres = self._postgres, None
        await asyncio.gather(
            asyncio.to_thread(broker.stop) if broker is not None else asyncio.sleep(0),
            asyncio.to_thread(postgres.stop) if postgres is not None else asyncio.sleep(0),
            self.storage.stop(),
        )

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

    async def stop_object_store(self) -> None:
        """Stop the embedded object store (the services stay up; their calls to it fail)."""
        await self.storage.stop()

    async def start_object_store(self) -> None:
        """Start the embedded object store again on the same port, with its data."""
        await self.storage.restart()

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

    async def _start_object_store(self) -> None:
        keys = self.secrets.s3_access_key_id, self.secrets.s3_secret_access_key
        self._progress(await self.storage.start(*keys))

    async def _create_database(self, service: Service) -> str:
        name = self._prefix + service.database
        return await create_role_and_database(self.postgres_url, name, self.secrets.passwords[name])

    async def _migrate(self, service: Service, env: Mapping[str, str]) -> None:
        failure = await migrate(service, env, self.supervisor.on_line)
        if failure is not None:
            raise StartupError(failure)

    def _wiring(self) -> Wiring:
        tansu = self._external_kafka is None
        return Wiring(
            self.ports,
            self.secrets,
            self.kafka_bootstrap,
            tansu,
            self.storage,
            self._extra_env,
            self.certificates,
        )


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
