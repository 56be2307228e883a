"""``python -m benchmarks rpc``: RPC round trips over Nest's TCP framing, vidmesh against NestJS.

Three pairs, named client_server: ``py_py`` (vidmesh's TcpClient in this process against
``benchmarks.rpc_server``), ``nest_nest`` (Nest's ClientTCP in ``bench-client.js`` against Nest's
``server.js``) and ``nest_py`` (the Nest client against the vidmesh server), each at 1 and at 64
requests in flight on ONE connection (see ``rpc_clients``). Python runs on uvloop on both sides.

Where the platform allows, the client side runs on one CPU and the server on another: whether
the two share a core changes a round trip more than twofold, so leaving it to the scheduler
makes the 1-in-flight numbers a coin toss. CPU columns are each process's CPU time under load
over the load's wall time (100% = one core), so a side near 100% is the bottleneck; "others" is
the CPU every other process on the machine used meanwhile, which should be near 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vidmesh.devstack.nest import NestPeerError, node_env, node_modules, script

from benchmarks.peers import (
    BenchmarkError,
    CpuWatch,
    Server,
    node,
    pinned,
    spare_cpus,
    spawn_server,
)
from benchmarks.rpc_clients import (
    HOST,
    PAYLOAD,
    Measure,
    measure_nest_client,
    measure_python_client,
)

CONCURRENCIES = (1, 64)
RATIOS = (
    ("ratio_rps_64", "py_py / nest_nest req/s, 64 in flight", ">= 1.5"),
    ("ratio_server_64", "nest_py / nest_nest req/s, 64 in flight", ">= 2.0"),
    ("ratio_p50_1", "py_py / nest_nest p50, 1 in flight", "<= 1.0"),
)


def python_server() -> contextlib.AbstractContextManager[Server]:
    argv = [sys.executable, "-m", "benchmarks.rpc_server", "--host", HOST, "--port", "0"]
    return spawn_server("the vidmesh server", argv)


def nest_server() -> contextlib.AbstractContextManager[Server]:
    argv = [node(), str(script("server.js")), "--port", "0"]
    return spawn_server("the Nest server", argv, env=node_env())


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    duration: float
    """Seconds measured per row and round."""
    warmup: float
    """Seconds of load before each measurement (a fresh connection and client each time)."""
    rounds: int
    """Every row is measured this many times, round-robin; the round of median req/s is kept."""


FULL = Settings(duration=4.0, warmup=1.0, rounds=3)
QUICK = Settings(duration=1.5, warmup=0.5, rounds=1)
NOISE_LIMIT = 10.0
"""Percent of a core that other processes may use during a row before it is flagged."""


def measure_row(
    measure: Measure, server: Server, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """One pair at one concurrency, with the CPU the server and everything else used meanwhile."""
    watch = CpuWatch(server)
    result = measure(server.port, concurrency=concurrency, duration=duration, warmup=warmup)
    server_cpu, other_cpu_pct = watch.stop()
    server_cpu_pct = 100 * server_cpu / (warmup + duration)
    return {
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 4),
        "p99_ms": round(result.p99_ms, 4),
        "count": result.count,
        "client_cpu_pct": round(result.cpu_pct, 1),
        "server_cpu_pct": round(server_cpu_pct, 1),
        "client_cpu_us_per_req": round(result.cpu_pct * 1e4 / result.rps, 2),
        "server_cpu_us_per_req": round(server_cpu_pct * 1e4 / result.rps, 2),
        "other_cpu_pct": round(other_cpu_pct, 1),
    }


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    kept = sorted(rounds, key=lambda row: row["rps"])[(len(rounds) - 1) // 2]
    return {**kept, "rps_rounds": [row["rps"] for row in rounds]}


def run(settings: Settings) -> dict[str, Any]:
    """Measure every pair at every concurrency; the summary, ratios included."""
    node_modules()  # installs the pinned Nest packages on first use, before anything is timed
    client_cpu, server_cpu = spare_cpus()
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with contextlib.ExitStack() as servers:
        with pinned(server_cpu):
            vidmesh = servers.enter_context(python_server())
            nest = servers.enter_context(nest_server())
        plan: list[tuple[str, Measure, Server]] = [
            ("py_py", measure_python_client, vidmesh),
            ("nest_nest", measure_nest_client, nest),
            ("nest_py", measure_nest_client, vidmesh),
        ]
        with pinned(client_cpu):
            for number in range(1, settings.rounds + 1):
                for pair, measure, server in plan:
                    for concurrency in CONCURRENCIES:
                        print(
                            f"round {number}/{settings.rounds}: {pair}, {concurrency} in flight",
                            file=sys.stderr,
                        )
                        row = measure_row(
                            measure, server, concurrency, settings.duration, settings.warmup
                        )
                        rounds.setdefault((pair, concurrency), []).append(row)
    results = {
        pair: {str(c): _median_round(rounds[pair, c]) for c in CONCURRENCIES} for pair, _, _ in plan
    }
    return summarise_run(results, client_cpu, server_cpu)


def summarise_run(
    results: dict[str, dict[str, dict[str, Any]]], client_cpu: int | None, server_cpu: int | None
) -> dict[str, Any]:
    def ratio(a: float, b: float) -> float:
        return round(a / b, 3)

    py_py, nest_nest, nest_py = results["py_py"], results["nest_nest"], results["nest_py"]
    return {
        "rpc": results,
        "ratio_rps_64": ratio(py_py["64"]["rps"], nest_nest["64"]["rps"]),
        "ratio_server_64": ratio(nest_py["64"]["rps"], nest_nest["64"]["rps"]),
        "ratio_p50_1": ratio(py_py["1"]["p50_ms"], nest_nest["1"]["p50_ms"]),
        "cpus": {"client": client_cpu, "server": server_cpu},
        "max_other_cpu_pct": max(
            row["other_cpu_pct"] for rows in results.values() for row in rows.values()
        ),
    }


def print_table(summary: dict[str, Any], settings: Settings) -> None:
    size = len(json.dumps(PAYLOAD, separators=(",", ":")))
    cpus = summary["cpus"]
    placement = (
        f"client on CPU {cpus['client']}, server on CPU {cpus['server']}"
        if cpus["client"] is not None
        else "processes not pinned"
    )
    print(f"RPC echo of a {size}-byte JSON payload over one TCP connection; {placement}")
    print(
        f"{settings.warmup:g}s warmup + {settings.duration:g}s measured per row; "
        f"the round of median req/s out of {settings.rounds}"
    )
    print("CPU: share of one core under load, and CPU microseconds per request, per process")
    print(
        f"{'pair':<10} {'in flight':>9} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'client CPU':>17} {'server CPU':>17} {'others':>7}"
    )
    for pair, rows in summary["rpc"].items():
        for concurrency, row in rows.items():
            print(
                f"{pair:<10} {concurrency:>9} {row['rps']:>10,.0f} {row['p50_ms']:>8.3f} "
                f"{row['p99_ms']:>8.3f} "
                f"{row['client_cpu_pct']:>4.0f}% {row['client_cpu_us_per_req']:>6.1f} us/req "
                f"{row['server_cpu_pct']:>4.0f}% {row['server_cpu_us_per_req']:>6.1f} us/req "
                f"{row['other_cpu_pct']:>6.0f}%"
            )
    for key, meaning, target in RATIOS:
        print(f"{key:<16} {summary[key]:6.2f}  {meaning} (target {target})")
    if summary["max_other_cpu_pct"] > NOISE_LIMIT:
        print(
            f"WARNING: other processes used up to {summary['max_other_cpu_pct']:.0f}% of a core "
            "during a measurement; these numbers are not trustworthy, run again on a quiet machine"
        )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks rpc", description=__doc__)
    quick, full = f"{QUICK.rounds} x {QUICK.duration:g}s", f"{FULL.rounds} x {FULL.duration:g}s"
    parser.add_argument("--quick", action="store_true", help=f"{quick} per row instead of {full}")
    settings = QUICK if parser.parse_args(argv).quick else FULL
    try:
        summary = run(settings)
    except (BenchmarkError, NestPeerError) as error:
        print(f"rpc benchmark failed: {error}", file=sys.stderr)
        return 1
    print_table(summary, settings)
    print(json.dumps(summary))
    return 0
