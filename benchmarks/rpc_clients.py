"""The two RPC load generators: vidmesh's TcpClient in this process, Nest's ClientTCP in Node.js.

Each drives ONE connection with ``concurrency`` loops, each awaiting one ``echo`` request after
another (every request its own frame), for ``warmup`` seconds and then ``duration`` seconds. The
requests completed inside the measurement window are counted, and their latencies give p50 and
p99 by nearest rank; ``cpu_pct`` is the client process's CPU use under load (100 = one core).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import uvloop
from vidmesh.devstack.nest import node_env, script
from vidmesh.transport import TcpClient

from benchmarks.peers import STARTUP_TIMEOUT, BenchmarkError, node, tail

HOST = "127.0.0.1"
PATTERN = "echo"
PAYLOAD: dict[str, Any] = {"id": 1, "name": "vidmesh", "tags": ["a", "b"]}


@dataclass(frozen=True, slots=True)
class Result:
    """One measurement, as its client saw it."""

    rps: float
    p50_ms: float
    p99_ms: float
    count: int
    cpu_pct: float
    """The client process's CPU use under load (100 = one core)."""


class Measure(Protocol):
    """A client driving load at one server port; returns what it measured."""

    def __call__(
        self, port: int, *, concurrency: int, duration: float, warmup: float, host: str = HOST
    ) -> Result: ...


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, as bench-client.js computes it."""
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def result_of(latencies_ms: list[float], duration: float, cpu_pct: float) -> Result:
    if not latencies_ms:
        raise BenchmarkError("no request completed in the measurement window")
    latencies_ms.sort()
    return Result(
        rps=len(latencies_ms) / duration,
        p50_ms=percentile(latencies_ms, 0.5),
        p99_ms=percentile(latencies_ms, 0.99),
        count=len(latencies_ms),
        cpu_pct=cpu_pct,
    )


def measure_python_client(
    port: int, *, concurrency: int, duration: float, warmup: float, host: str = HOST
) -> Result:
    """vidmesh's TcpClient, on uvloop in this process: ``concurrency`` loops on one connection."""
    return uvloop.run(_drive_python_client(host, port, concurrency, duration, warmup))


async def _drive_python_client(
    host: str, port: int, concurrency: int, duration: float, warmup: float
) -> Result:
    async with TcpClient(host, port) as client:
        answer = await client.send(PATTERN, PAYLOAD)
        if answer != PAYLOAD:
            raise BenchmarkError(f"echo answered {answer!r}")
        latencies: list[float] = []
        start = time.perf_counter_ns()
        measure_from = start + round(warmup * 1e9)
        until = measure_from + round(duration * 1e9)

        async def loop() -> None:
            now = time.perf_counter_ns()
            while now < until:
                began = now
                await client.send(PATTERN, PAYLOAD)
                now = time.perf_counter_ns()
                if measure_from <= now <= until:
                    latencies.append((now - began) / 1e6)

        cpu_before = time.process_time()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        cpu = time.process_time() - cpu_before
        elapsed = (time.perf_counter_ns() - start) / 1e9
    return result_of(latencies, duration, 100 * cpu / elapsed)


def measure_nest_client(
    port: int, *, concurrency: int, duration: float, warmup: float, host: str = HOST
) -> Result:
    """Nest's ClientTCP in ``bench-client.js``: ``concurrency`` loops on one connection."""
    argv = [
        node(),
        str(script("bench-client.js")),
        *("--host", host, "--port", str(port), "--concurrency", str(concurrency)),
        *("--duration", str(duration), "--warmup", str(warmup), "--payload", json.dumps(PAYLOAD)),
    ]
    try:
        done = subprocess.run(
            argv,
            env=node_env(),
            capture_output=True,
            text=True,
            timeout=warmup + duration + STARTUP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError("bench-client.js did not finish in time") from None
    if done.returncode != 0:
        raise BenchmarkError(f"bench-client.js exited with {done.returncode}: {tail(done.stderr)}")
    fields = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(
        rps=float(fields["rps"]),
        p50_ms=float(fields["p50_ms"]),
        p99_ms=float(fields["p99_ms"]),
        count=int(fields["count"]),
        cpu_pct=float(fields["cpu_pct"]),
    )
