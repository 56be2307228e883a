"""Peer processes for the benchmarks and the machine they share.

Start a server, learn its port, always stop it; give client and server a core each; and count
the CPU that other processes took meanwhile, since a busy machine makes the numbers worthless.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psutil

STARTUP_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parent.parent


class BenchmarkError(RuntimeError):
    """A peer did not start, failed, or answered wrongly."""


@dataclass(frozen=True, slots=True)
class Server:
    """A running server process and the port it listens on."""

    name: str
    port: int
    process: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


@contextlib.contextmanager
def spawn_server(
    name: str, argv: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run a server that prints ``READY <port>``; always stops it (SIGTERM, then SIGKILL)."""
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=ROOT
        ) as process,
    ):
        try:
            port = _read_ready(name, process, errors)
            yield Server(name, port, psutil.Process(process.pid))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_ready(name: str, process: subprocess.Popen[bytes], errors: BinaryIO) -> int:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    output = b""
    while b"\n" not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise BenchmarkError(f"{name} printed no READY line in {STARTUP_TIMEOUT:g}s")
        chunk = os.read(fd, 4096)
        if not chunk:
            process.wait(timeout=5)
            errors.seek(0)
            raise BenchmarkError(f"{name} exited with {process.returncode}: {tail(errors.read())}")
        output += chunk
    line = output.split(b"\n", 1)[0].decode(errors="replace")
    if not line.startswith("READY "):
        raise BenchmarkError(f"{name} printed {line!r} instead of READY <port>")
    return int(line.split()[1])


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run this process, and the processes it starts meanwhile, on one CPU (None: anywhere)."""
    if cpu is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def spare_cpus() -> tuple[int | None, int | None]:
    """A CPU for the client and another for the server, where this platform can pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


class CpuWatch:
    """CPU used from now on by a server, by this process and its children, and by all else."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system
        busy += sum(getattr(machine, field, 0.0) for field in ("irq", "softirq", "steal"))
        ours = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)  # children count once they have been waited for
            ours += usage.ru_utime + usage.ru_stime
        return time.monotonic(), busy, ours, self._server.cpu_seconds()

    def stop(self) -> tuple[float, float]:
        """Seconds of server CPU, and the percentage of a core others used, since the start."""
        (wall0, busy0, ours0, server0), (wall1, busy1, ours1, server1) = self._start, self._read()
        server = server1 - server0
        others = (busy1 - busy0) - (ours1 - ours0) - server
        return server, max(0.0, 100 * others / (wall1 - wall0))


def tail(text: str | bytes, limit: int = 2000) -> str:
    """The end of a peer's error output, for an error message."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text.strip()[-limit:]


def node() -> str:
    path = shutil.which("node")
    if path is None:
        raise BenchmarkError("Node.js is needed for the NestJS side of the benchmarks")
    return path
