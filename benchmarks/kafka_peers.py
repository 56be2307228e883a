"""The Kafka benchmark's peer processes: producers and consumers speaking JSON lines.

Each peer prints ``READY 0`` once connected (a consumer: once its group gave it its partitions),
then one JSON object a line on stdout: a producer answers each command written to its stdin, a
consumer reports each run it has seen whole. Their stderr goes to a temporary file, quoted when
they fail. ``Machine`` counts the CPU each peer, the broker and everything else used meanwhile.

Peers: ``benchmarks.kafka_producer`` / ``benchmarks.kafka_consumer`` for ``py_py``, and
``kafka-bench-producer.js`` / ``kafka-bench-consumer.js`` (Nest, kafkajs) for ``nest_nest``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import orjson
import psutil
from vidmesh.devstack.broker import TansuBroker
from vidmesh.devstack.nest import node_env, script

from benchmarks.peers import ROOT, STARTUP_TIMEOUT, BenchmarkError, node, tail


class LinePeer:
    """A running peer: write it commands, read its JSON lines, count its CPU."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], errors: BinaryIO) -> None:
        self.name = name
        self.process = psutil.Process(process.pid)
        self._popen = process
        self._errors = errors
        self._buffer = b""

    def send(self, message: Mapping[str, Any]) -> None:
        assert self._popen.stdin is not None
        try:
            self._popen.stdin.write(orjson.dumps(message) + b"\n")
            self._popen.stdin.flush()
        except BrokenPipeError:
            raise self._failed("closed its input") from None

    def read_line(self, timeout: float) -> bytes:
        """The next line on stdout, without its newline; BenchmarkError after ``timeout`` s."""
        assert self._popen.stdout is not None
        fd = self._popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise BenchmarkError(f"{self.name} printed nothing for {timeout:g}s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._failed("closed its output")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def receive(self, timeout: float) -> dict[str, Any]:
        line = self.read_line(timeout)
        try:
            message: dict[str, Any] = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BenchmarkError(f"{self.name} printed {line[:200]!r}") from None
        return message

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def _failed(self, what: str) -> BenchmarkError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=5)
        self._errors.seek(0)
        code = self._popen.returncode
        return BenchmarkError(f"{self.name} {what} (exit {code}): {tail(self._errors.read())}")


@contextlib.contextmanager
def spawn_peer(
    name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[LinePeer]:
    """Start a peer and wait for its ``READY`` line; always stops it (SIGTERM, then SIGKILL)."""
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=None if env is None else dict(env),
            cwd=ROOT,
        ) as process,
    ):
        try:
            peer = LinePeer(name, process, errors)
            line = peer.read_line(STARTUP_TIMEOUT)
            if not line.startswith(b"READY "):
                raise BenchmarkError(f"{name} printed {line[:200]!r} instead of READY")
            yield peer
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Machine:
    """CPU used from ``start()`` to ``stop()`` by named groups of processes, and by all others."""

    def __init__(self, groups: Mapping[str, Sequence[psutil.Process]]) -> None:
        self._groups = {name: list(processes) for name, processes in groups.items()}
        self._start = self._read()

    def _read(self) -> tuple[float, float, dict[str, float]]:
        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system
        busy += sum(getattr(machine, field, 0.0) for field in ("irq", "softirq", "steal"))
        usage = resource.getrusage(resource.RUSAGE_SELF)  # this process, the orchestrator
        used = {"orchestrator": usage.ru_utime + usage.ru_stime}
        for name, processes in self._groups.items():
            used[name] = sum(sum(p.cpu_times()[:2]) for p in processes)
        return time.monotonic(), busy, used

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """Each group's CPU since ``start()`` in percent of one core; ``others`` for the rest."""
        (wall0, busy0, used0), (wall1, busy1, used1) = self._start, self._read()
        wall = wall1 - wall0
        spent = {name: used1[name] - used0[name] for name in used1}
        shares = {name: 100 * seconds / wall for name, seconds in spent.items()}
        others = (busy1 - busy0) - sum(spent.values())
        shares["others"] = max(0.0, 100 * others / wall)
        return shares


def tansu_process(broker: TansuBroker) -> psutil.Process:
    """The broker process of ``broker`` (not just any tansu: a test session may run another)."""
    return psutil.Process(broker.pid)


def _kafkajs_env() -> dict[str, str]:
    return {**node_env(), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}


def start_producer(pair: str, bootstrap: str) -> contextlib.AbstractContextManager[LinePeer]:
    """The producer of a pair (``py_py`` or ``nest_nest``), connected; each run names its topic."""
    if pair == "py_py":
        argv = [sys.executable, "-m", "benchmarks.kafka_producer", "--bootstrap", bootstrap]
        return spawn_peer(f"the {pair} producer", argv)
    argv = [node(), str(script("kafka-bench-producer.js")), "--brokers", bootstrap]
    return spawn_peer(f"the {pair} producer", argv, _kafkajs_env())


def start_consumer(
    pair: str, bootstrap: str, topic: str, max_wait_ms: int | None = None
) -> contextlib.AbstractContextManager[LinePeer]:
    """The consumer of a pair on ``topic``, in a group of its own; returns once it was given
    its partitions. ``max_wait_ms``: its fetch max wait (None: the library's default)."""
    options = ["--topic", topic, "--group", f"{topic}.group"]
    if max_wait_ms is not None:
        options += ["--max-wait-ms", str(max_wait_ms)]
    if pair == "py_py":
        argv = [sys.executable, "-m", "benchmarks.kafka_consumer", "--bootstrap", bootstrap]
        return spawn_peer(f"the {pair} consumer", [*argv, *options])
    argv = [node(), str(script("kafka-bench-consumer.js")), "--brokers", bootstrap]
    return spawn_peer(f"the {pair} consumer", [*argv, *options], _kafkajs_env())
