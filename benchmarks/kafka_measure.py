"""One measurement of the Kafka benchmark: a pair's producer emits, its consumer reports.

``measure_throughput`` emits N events with up to ``window`` emits in flight and counts events/s
from the first emit to the last event handled; ``measure_latency`` emits events at ``RATE``/s,
each carrying its wall-clock send time, and keeps the handler's ``now - sent`` of every event.
Both count the CPU each process used meanwhile (``Machine``), in percent of one core.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psutil

from benchmarks.kafka_peers import LinePeer, Machine, start_consumer
from benchmarks.peers import BenchmarkError, pinned
from benchmarks.rpc_clients import PAYLOAD, percentile

RATE = 1000
"""Events per second while measuring latency."""


def watch(producer: LinePeer, consumer: LinePeer, tansu: psutil.Process) -> Machine:
    """A CPU count of the measured pair and the broker (and of everything else)."""
    return Machine(
        {"producer": [producer.process], "consumer": [consumer.process], "tansu": [tansu]}
    )


def emit_run(
    producer: LinePeer,
    consumer: LinePeer,
    topic: str,
    run: str,
    n: int,
    *,
    rate: float | None,
    window: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Have the producer emit ``n`` events to ``topic``; what it and the consumer reported."""
    command = {"topic": topic, "run": run, "n": n, "rate": rate, "window": window}
    producer.send({**command, "body": PAYLOAD})
    timeout = 30.0 + (n / rate if rate else n / 500)
    produced = producer.receive(timeout)
    consumed = consumer.receive(timeout)
    if produced["run"] != run or consumed["run"] != run or consumed["count"] != n:
        raise BenchmarkError(f"run {run} on {topic} came back as {produced} / {consumed}")
    return produced, consumed


def _cpu_fields(shares: dict[str, float], events_per_s: float) -> dict[str, float]:
    fields: dict[str, float] = {}
    for name in ("producer", "consumer", "tansu"):
        fields[f"{name}_cpu_pct"] = round(shares[name], 1)
        fields[f"{name}_cpu_us_per_event"] = round(shares[name] * 1e4 / events_per_s, 2)
    fields["other_cpu_pct"] = round(shares["others"] + shares["orchestrator"], 1)
    return fields


def measure_throughput(
    producer: LinePeer, consumer: LinePeer, topic: str, n: int, window: int, machine: Machine
) -> dict[str, Any]:
    """Emit ``n`` events as fast as ``window`` in flight allow; events/s from emit to handled."""
    machine.start()
    produced, consumed = emit_run(
        producer, consumer, topic, "throughput", n, rate=None, window=window
    )
    shares = machine.stop()
    seconds = (consumed["last_handled_us"] - produced["first_emit_us"]) / 1e6
    acked = (produced["last_ack_us"] - produced["first_emit_us"]) / 1e6
    eps = n / seconds
    return {
        "throughput_eps": round(eps, 1),
        "emit_eps": round(n / acked, 1),
        "events": n,
        "seconds": round(seconds, 4),
        **_cpu_fields(shares, eps),
    }


def measure_latency(
    producer: LinePeer, consumer: LinePeer, topic: str, seconds: float, machine: Machine
) -> dict[str, Any]:
    """Events at ``RATE``/s for ``seconds``: their latencies (ms) and what it cost."""
    n = round(RATE * seconds)
    machine.start()
    produced, consumed = emit_run(producer, consumer, topic, "latency", n, rate=RATE, window=n)
    shares = machine.stop()
    sent = (produced["last_emit_us"] - produced["first_emit_us"]) / 1e6
    return {
        "latencies_ms": [us / 1000 for us in consumed["latencies_us"]],
        "rate_eps": round((n - 1) / sent, 1) if sent > 0 else float(n),
        **_cpu_fields(shares, RATE),
    }


def latency_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles over the samples of every round; CPU figures of the median-p50 round."""
    samples = sorted(ms for row in rounds for ms in row["latencies_ms"])
    if not samples:
        raise BenchmarkError("no latency sample")
    p50s = [percentile(sorted(row["latencies_ms"]), 0.5) for row in rounds]
    median = sorted(range(len(rounds)), key=p50s.__getitem__)[(len(rounds) - 1) // 2]
    return {
        "p50_ms": round(percentile(samples, 0.5), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(samples[-1], 3),
        "count": len(samples),
        "p50_ms_rounds": [round(p50, 3) for p50 in p50s],
        **{key: value for key, value in rounds[median].items() if key != "latencies_ms"},
    }


@contextlib.contextmanager
def fresh_consumer(
    pair: str,
    producer: LinePeer,
    bootstrap: str,
    topic: str,
    *,
    max_wait_ms: int | None,
    warmup_events: int,
    window: int,
    cpu: int | None = None,
) -> Iterator[LinePeer]:
    """The pair's consumer on ``topic`` (fresh, as is its group), run on ``cpu`` and warmed up
    with ``warmup_events`` emitted as fast as ``window`` in flight allow."""
    with contextlib.ExitStack() as stack:
        with pinned(cpu):
            consumer = stack.enter_context(start_consumer(pair, bootstrap, topic, max_wait_ms))
        emit_run(producer, consumer, topic, "warmup", warmup_events, rate=None, window=window)
        yield consumer
