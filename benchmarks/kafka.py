"""``python -m benchmarks kafka``: Kafka events, emit to handled, vidmesh against NestJS.

Two pairs, named producer_consumer: ``py_py`` (vidmesh's ``KafkaClient.emit`` in
``benchmarks.kafka_producer`` to a vidmesh Microservice with a ``KafkaTransport`` and an
``@router.event`` handler in ``benchmarks.kafka_consumer``) and ``nest_nest`` (Nest's
``ClientKafka.emit`` in ``kafka-bench-producer.js`` to a Nest microservice with
``Transport.KAFKA`` and an ``@EventPattern`` handler in ``kafka-bench-consumer.js``), measured in
the same run, taking turns.

Each round measures, for each pair (see ``benchmarks.kafka_measure``):
- throughput: N events emitted with up to ``window`` emits in flight, events/s from the first
  emit to the last event handled (wall clocks, same machine);
- latency: events at 1,000/s, each carrying its wall-clock send time; the handler notes
  ``now - sent``. p50 and p99 are taken over the samples of every round.

Every measurement starts from scratch: an in-memory tansu broker, a topic (4 partitions) made
with ``create_topics``, a producer, and a consumer in a group of its own, warmed up before the
clock starts. tansu gets slower as it holds more record batches (in the partition, and overall),
so with one broker for the whole run each measurement would pay for those before it.

Both consumers fetch with the same max wait, 10 ms unless ``--max-wait-ms`` says otherwise:
where Kafka answers a fetch as soon as data arrives, tansu sleeps through the fetch's max wait,
so the latency measured is mostly that setting (each library's default: vidmesh 100 ms, kafkajs
5000 ms) unless it is small.

The producer runs on one CPU, the consumer on another; tansu may use both and is reported on its
own, as is everything else (which should stay near 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vidmesh.devstack.broker import BrokerError, TansuBroker
from vidmesh.devstack.nest import NestPeerError, node_modules
from vidmesh.transport.kafka import create_topics

from benchmarks.kafka_measure import (
    RATE,
    fresh_consumer,
    latency_summary,
    measure_latency,
    measure_throughput,
    watch,
)
from benchmarks.kafka_peers import start_producer, tansu_process
from benchmarks.peers import BenchmarkError, pinned, spare_cpus

PAIRS = ("py_py", "nest_nest")
KINDS = ("throughput", "latency")
PARTITIONS = 4


@dataclass(frozen=True, slots=True)
class Settings:
    events: int
    """Events per throughput measurement."""
    window: int
    """Emits in flight at once while measuring throughput."""
    latency_seconds: float
    """Seconds of events at ``RATE`` per latency measurement."""
    warmup_events: int
    """Events emitted, as fast as allowed, before anything is measured."""
    rounds: int
    """Every measurement is made this many times; throughput keeps the median round."""
    max_wait_ms: int | None = 10
    """The consumers' fetch max wait (None: each library's default)."""


FULL = Settings(events=20_000, window=1000, latency_seconds=4.0, warmup_events=3000, rounds=3)
QUICK = Settings(events=10_000, window=1000, latency_seconds=2.0, warmup_events=3000, rounds=1)
NOISE_LIMIT = 10.0
"""Percent of a core that other processes may use during a measurement before it is flagged."""


# -- the run ----------------------------------------------------------------------------------


def measure_step(
    pair: str, kind: str, settings: Settings, cpus: tuple[int | None, int | None]
) -> dict[str, Any]:
    """One measurement (``kind``: throughput or latency) on a broker and a topic of its own."""
    topic = f"bench.{pair}.{kind}.{uuid.uuid4().hex[:8]}"
    with TansuBroker() as broker, contextlib.ExitStack() as stack:
        asyncio.run(create_topics(broker.bootstrap, [topic], PARTITIONS))
        tansu = tansu_process(broker)
        with pinned(cpus[0]):
            producer = stack.enter_context(start_producer(pair, broker.bootstrap))
        consumer = stack.enter_context(
            fresh_consumer(
                pair,
                producer,
                broker.bootstrap,
                topic,
                max_wait_ms=settings.max_wait_ms,
                warmup_events=settings.warmup_events,
                window=settings.window,
                cpu=cpus[1],
            )
        )
        machine = watch(producer, consumer, tansu)
        if kind == "throughput":
            return measure_throughput(
                producer, consumer, topic, settings.events, settings.window, machine
            )
        return measure_latency(producer, consumer, topic, settings.latency_seconds, machine)


def run(settings: Settings) -> dict[str, Any]:
    """Measure both pairs, taking turns; the summary, ratios included."""
    node_modules()  # installs the pinned Nest packages on first use, before anything is timed
    cpus = spare_cpus()
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for number in range(1, settings.rounds + 1):
        for pair in PAIRS:
            for kind in KINDS:
                print(f"round {number}/{settings.rounds}: {pair} {kind}", file=sys.stderr)
                rows.setdefault((pair, kind), []).append(measure_step(pair, kind, settings, cpus))
    results = {
        pair: {
            **_median_round(rows[pair, "throughput"]),
            f"latency_{RATE}": latency_summary(rows[pair, "latency"]),
        }
        for pair in PAIRS
    }
    return summarise(results, settings, cpus)


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    kept = sorted(rounds, key=lambda row: row["throughput_eps"])[(len(rounds) - 1) // 2]
    return {**kept, "throughput_eps_rounds": [row["throughput_eps"] for row in rounds]}


def summarise(
    results: dict[str, dict[str, Any]], settings: Settings, cpus: tuple[int | None, int | None]
) -> dict[str, Any]:
    py, nest = results["py_py"], results["nest_nest"]
    lat = f"latency_{RATE}"
    rows = [row for result in results.values() for row in (result, result[lat])]
    return {
        "kafka": results,
        "ratio_throughput": round(py["throughput_eps"] / nest["throughput_eps"], 3),
        f"ratio_p50_{RATE}": round(py[lat]["p50_ms"] / nest[lat]["p50_ms"], 3),
        "settings": {
            "partitions": PARTITIONS,
            "events": settings.events,
            "window": settings.window,
            "latency_seconds": settings.latency_seconds,
            "warmup_events": settings.warmup_events,
            "rounds": settings.rounds,
            "max_wait_ms": settings.max_wait_ms,
        },
        "cpus": {"producers": cpus[0], "consumers": cpus[1]},
        "max_other_cpu_pct": max(row["other_cpu_pct"] for row in rows),
    }


def _cpu_cells(row: dict[str, Any]) -> str:
    cells = [
        f"{row[f'{name}_cpu_pct']:>4.0f}% {row[f'{name}_cpu_us_per_event']:>6.1f} us/ev"
        for name in ("producer", "consumer", "tansu")
    ]
    return " ".join(cells) + f" {row['other_cpu_pct']:>6.0f}%"


def print_table(summary: dict[str, Any]) -> None:
    settings, cpus = summary["settings"], summary["cpus"]
    placement = (
        f"producers on CPU {cpus['producers']}, consumers on CPU {cpus['consumers']}, tansu on any"
        if cpus["producers"] is not None
        else "processes not pinned"
    )
    wait = settings["max_wait_ms"]
    fetch = "each library's default" if wait is None else f"{wait} ms on both sides"
    print(
        f"Kafka events through in-memory tansu, a fresh broker and topic ({settings['partitions']} "
        f"partitions) per measurement; {placement}"
    )
    print(
        f"throughput: {settings['events']:,} events, {settings['window']} emits in flight, "
        f"the median of {settings['rounds']} round(s); latency: {RATE} events/s for "
        f"{settings['latency_seconds']:g}s per round, all rounds pooled; fetch max wait: {fetch}"
    )
    print("CPU: share of one core, and CPU microseconds per event, per process")
    head = f"{'producer CPU':>17} {'consumer CPU':>17} {'tansu CPU':>17} {'others':>7}"
    print(f"{'pair':<10} {'events/s':>9} {'emit/s':>9} {head}")
    for pair, row in summary["kafka"].items():
        print(
            f"{pair:<10} {row['throughput_eps']:>9,.0f} {row['emit_eps']:>9,.0f} {_cpu_cells(row)}"
        )
    print(f"{'at 1000/s':<10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'count':>6} {head}")
    for pair, result in summary["kafka"].items():
        row = result[f"latency_{RATE}"]
        print(
            f"{pair:<10} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['max_ms']:>7.1f} "
            f"{row['count']:>6} {_cpu_cells(row)}"
        )
    ratio = summary["ratio_throughput"]
    print(f"{'ratio_throughput':<16} {ratio:6.2f}  py_py / nest_nest events/s")
    print(
        f"{f'ratio_p50_{RATE}':<16} {summary[f'ratio_p50_{RATE}']:6.2f}  "
        f"py_py / nest_nest p50 latency at {RATE} events/s"
    )
    if summary["max_other_cpu_pct"] > NOISE_LIMIT:
        print(
            f"WARNING: other processes used up to {summary['max_other_cpu_pct']:.0f}% of a core "
            "during a measurement; these numbers are not trustworthy, run again on a quiet machine"
        )


def _max_wait(text: str) -> int | None:
    return None if text == "default" else int(text)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks kafka", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 short round instead of 3")
    parser.add_argument(
        "--max-wait-ms",
        type=_max_wait,
        default=FULL.max_wait_ms,
        help="the consumers' fetch max wait in ms, or 'default' for each library's own "
        f"(default: {FULL.max_wait_ms})",
    )
    args = parser.parse_args(argv)
    settings = dataclasses.replace(QUICK if args.quick else FULL, max_wait_ms=args.max_wait_ms)
    try:
        summary = run(settings)
    except (BenchmarkError, BrokerError, NestPeerError) as error:
        print(f"kafka benchmark failed: {error}", file=sys.stderr)
        return 1
    print_table(summary)
    print(json.dumps(summary))
    return 0
