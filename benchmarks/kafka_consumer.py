"""The Python consumer of the Kafka benchmark: a vidmesh Microservice with one ``@router.event``.

Run as ``python -m benchmarks.kafka_consumer --bootstrap H:P --topic T --group G
[--max-wait-ms MS]``. Prints ``READY 0`` once the group gave it its partitions, then one JSON line
per finished run (the same lines as ``kafka-bench-consumer.js``, see ``RunTally``); stops cleanly
on SIGTERM or SIGINT. Runs on uvloop and logs only warnings and errors, to stderr.

Every event is ``{"run": label, "n": events in the run, "i": index, "t": send time}``, ``t``
being wall-clock microseconds since the epoch; the handler notes ``now - t``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from vidmesh.devstack.broker import FAST_GROUP_JOIN
from vidmesh.transport import Microservice, Router, run_with_uvloop
from vidmesh.transport.kafka import KafkaTransport


@dataclass(slots=True)
class RunTally:
    """What one consumer saw of one run; printed as a JSON line once all ``n`` events came."""

    n: int
    seen: bytearray
    first_us: int = 0
    latencies_us: list[int] = field(default_factory=list)

    def line(self, run: str, last_us: int) -> bytes:
        return orjson.dumps(
            {
                "run": run,
                "count": self.n,
                "first_handled_us": self.first_us,
                "last_handled_us": last_us,
                "latencies_us": self.latencies_us,
            }
        )


class Tallies:
    """Counts every run's events (a redelivered one once) and reports each finished run."""

    def __init__(self) -> None:
        self._runs: dict[str, RunTally] = {}

    def record(self, event: dict[str, Any]) -> None:
        now_us = time.time_ns() // 1000
        run = event["run"]
        tally = self._runs.get(run)
        if tally is None:
            n = int(event["n"])
            tally = self._runs[run] = RunTally(n, bytearray(n), first_us=now_us)
        index = int(event["i"])
        if tally.seen[index]:
            return
        tally.seen[index] = 1
        tally.latencies_us.append(now_us - int(event["t"]))
        if len(tally.latencies_us) == tally.n:
            del self._runs[run]
            sys.stdout.buffer.write(tally.line(run, now_us) + b"\n")
            sys.stdout.flush()


async def serve(bootstrap: str, topic: str, group: str, max_wait_ms: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tallies = Tallies()
    router = Router()

    @router.event(topic)
    def handled(data: Any) -> None:
        tallies.record(data)

    config: dict[str, Any] = dict(FAST_GROUP_JOIN)
    if max_wait_ms is not None:
        config["fetch_max_wait_ms"] = max_wait_ms
    transport = KafkaTransport(bootstrap, group_id=group, consumer_config=config)
    async with Microservice("kafka-bench", router, transports=[transport]):
        await transport.wait_assigned()
        print("READY 0", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kafka_consumer")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--max-wait-ms", type=int, help="fetch_max_wait_ms (aiokafka: 500)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    run_with_uvloop(lambda: serve(args.bootstrap, args.topic, args.group, args.max_wait_ms))


if __name__ == "__main__":
    main()
