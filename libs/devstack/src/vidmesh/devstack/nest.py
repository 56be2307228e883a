"""Real NestJS peers: install ``@nestjs/microservices`` from the npm registry into a cache folder
and run the peer scripts beside this module with Node.js.

The cache is keyed by the lockfile's hash, so a changed pin installs afresh. Set
``VIDMESH_CACHE_DIR`` to move it (default ``~/.cache/vidmesh``).

Peers: ``nest_server()`` runs ``server.js`` (a Nest TCP microservice); ``run_nest_client()`` runs
``client.js``, a Nest ``ClientProxy`` playing a list of calls; ``nest_routes()`` asks Nest's own
``transformPatternToRoute`` for the routing keys of a batch of patterns. Kafka peers:
``nest_kafka.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PEER_DIR = Path(__file__).parent / "nestpeer"


class NestPeerError(RuntimeError):
    """Node.js or npm is missing, or the install or a peer failed."""


@dataclass(frozen=True)
class NestTls:
    """Mutual TLS for a Nest client (its ``tlsOptions``): the certificate and key it presents,
    the CA it trusts, and the name it verifies the server by."""

    key: Path
    cert: Path
    ca: Path
    servername: str

    def to_arg(self) -> str:
        return json.dumps(
            {
                "key": str(self.key),
                "cert": str(self.cert),
                "ca": str(self.ca),
                "servername": self.servername,
            }
        )


def cache_root() -> Path:
    return Path(os.environ.get("VIDMESH_CACHE_DIR", Path.home() / ".cache" / "vidmesh"))


def node_modules() -> Path:
    """The ``node_modules`` folder holding the pinned Nest packages; installs them once."""
    lockfile = (PEER_DIR / "package-lock.json").read_bytes()
    digest = hashlib.sha256((PEER_DIR / "package.json").read_bytes() + lockfile).hexdigest()[:16]
    target = cache_root() / "nest-peers" / digest
    if (target / "node_modules" / ".vidmesh-complete").exists():
        return target / "node_modules"
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{digest}.lock"):
        if not (target / "node_modules" / ".vidmesh-complete").exists():
            _install(target)
    return target / "node_modules"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise NestPeerError("Node.js and npm are needed for the NestJS peers")
    staging = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PEER_DIR / name, staging / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=staging,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise NestPeerError(f"npm ci failed:\n{result.stdout}\n{result.stderr}")
    (staging / "node_modules" / ".vidmesh-complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def node_env() -> dict[str, str]:
    """Environment in which the peer scripts find the installed packages."""
    return {**os.environ, "NODE_PATH": str(node_modules())}


def script(name: str) -> Path:
    """Path of a peer script (``server.js``, ``client.js``, ...)."""
    return PEER_DIR / name


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise NestPeerError("Node.js is needed for the NestJS peers")
    return node


@contextlib.contextmanager
def nest_server(*extra_args: str, port: int = 0) -> Iterator[int]:
    """Run ``server.js`` (a Nest TCP microservice) and yield the port it listens on.

    Its output is read all along (a Node.js process blocks once a pipe it writes to is full, and
    Nest logs every failed handler); the last lines go into the error if it does not start.
    """
    node = node_binary()
    process = subprocess.Popen(
        [node, str(script("server.js")), "--port", str(port), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=node_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=200)
    readers = [
        threading.Thread(target=drain_lines, args=(process.stderr, stderr_tail), daemon=True),
    ]
    with process:  # closes the pipes on the way out
        try:
            readers[0].start()
            line = process.stdout.readline()
            if not line.startswith("READY "):
                stop_node(process)
                readers[0].join(timeout=5)
                raise NestPeerError(f"Nest server did not start: {line!r} {''.join(stderr_tail)}")
            readers.append(
                threading.Thread(
                    target=drain_lines, args=(process.stdout, deque(maxlen=1)), daemon=True
                )
            )
            readers[1].start()
            yield int(line.split()[1])
        finally:
            stop_node(process)
            for reader in readers:
                reader.join(timeout=5)


def drain_lines(stream: IO[str], tail: deque[str]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            tail.append(line)


def stop_node(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def run_nest_client(
    port: int,
    calls: Sequence[Mapping[str, Any]],
    *,
    host: str = "127.0.0.1",
    call_timeout: float = 10.0,
    timeout: float = 60.0,
    tls: NestTls | None = None,
) -> list[dict[str, Any]]:
    """Play ``calls`` with ``client.js`` (a Nest ``ClientProxy``) against ``host:port``.

    Each call is ``{"kind": "send" | "stream" | "emit", "pattern": ..., "data": ...}`` (see
    ``client.js``); the result has one ``{"ok": value}`` or ``{"err": error}`` per call. Runs
    Node.js as an asyncio subprocess, so a server in the same event loop keeps answering.
    ``call_timeout`` bounds each call, ``timeout`` the whole run. ``tls``: over mutual TLS.
    """
    env = node_env()
    tls_args = ["--tls", tls.to_arg()] if tls is not None else []
    process = await asyncio.create_subprocess_exec(
        node_binary(),
        str(script("client.js")),
        "--host",
        host,
        "--port",
        str(port),
        "--timeout",
        str(round(call_timeout * 1000)),
        *tls_args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(json.dumps(list(calls)).encode()), timeout
        )
    except BaseException as error:
        if process.returncode is None:
            process.kill()
        await process.wait()
        if isinstance(error, TimeoutError):
            raise NestPeerError(f"Nest client did not finish in {timeout}s") from None
        raise
    if process.returncode != 0:
        raise NestPeerError(
            f"Nest client exited with {process.returncode}: {stderr.decode(errors='replace')}"
        )
    lines = stdout.decode().splitlines()
    if not lines:
        raise NestPeerError(f"Nest client printed nothing: {stderr.decode(errors='replace')}")
    results: list[dict[str, Any]] = json.loads(lines[-1])
    return results


def nest_routes(patterns: Sequence[Any]) -> list[Any]:
    """Nest's ``transformPatternToRoute`` of each pattern, computed in one Node.js process.

    The patterns travel as JSON, so they are what a Nest peer would see after parsing a packet.
    """
    result = subprocess.run(
        [node_binary(), str(script("routes.js"))],
        input=json.dumps(list(patterns)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=node_env(),
    )
    if result.returncode != 0:
        raise NestPeerError(f"routes.js failed: {result.stderr}")
    routes: list[Any] = json.loads(result.stdout)
    return routes
