"""Real NestJS peers: install ``@nestjs/microservices`` from the npm registry into a cache folder
and run the peer scripts beside this module with Node.js.

The cache is keyed by the lockfile's hash, so a changed pin installs afresh. Set
``VIDMESH_CACHE_DIR`` to move it (default ``~/.cache/vidmesh``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PEER_DIR = Path(__file__).parent / "nestpeer"


class NestPeerError(RuntimeError):
    """Node.js or npm is missing, or the install or a peer failed."""


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


@contextlib.contextmanager
def nest_server(*extra_args: str, port: int = 0) -> Iterator[int]:
    """Run ``server.js`` (a Nest TCP microservice) and yield the port it listens on."""
    node = shutil.which("node")
    if node is None:
        raise NestPeerError("Node.js is needed for the NestJS peers")
    process = subprocess.Popen(
        [node, str(script("server.js")), "--port", str(port), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=node_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            stderr = process.stderr.read() if process.stderr else ""
            raise NestPeerError(f"Nest server did not start: {line!r} {stderr}")
        yield int(line.split()[1])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
