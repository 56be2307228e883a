"""The Python producer of the Kafka benchmark: vidmesh's ``KafkaClient.emit``, on uvloop.

Run as ``python -m benchmarks.kafka_producer --bootstrap H:P``. Prints ``READY 0``
once connected, then plays one run per JSON line on stdin and answers each with one JSON line,
exactly like ``kafka-bench-producer.js`` (see there for the fields). Exits at the end of stdin.

``emit`` returns once the broker acknowledged the record (acks=all), so to publish as fast as the
client allows, up to ``window`` emits are in flight at once (each its own task), as the Nest
producer keeps ``window`` ``ClientKafka.emit`` calls in flight. While they wait, aiokafka's
accumulator gathers the records into one batch per partition (linger_ms=0, 16 KiB batches).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
from vidmesh.transport import run_with_uvloop
from vidmesh.transport.kafka import KafkaClient


def wall_us() -> int:
    return time.time_ns() // 1000


async def play(client: KafkaClient, command: dict[str, Any]) -> dict[str, Any]:
    """Emit one run's events; its timings once every emit was acknowledged."""
    topic, run, n, rate, window, body = (
        command[k] for k in ("topic", "run", "n", "rate", "window", "body")
    )
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(window)
    pending: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def settled(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        slots.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            failures.append(error)

    start = time.perf_counter()
    first_emit = last_emit = wall_us()
    for i in range(n):
        if rate:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        await slots.acquire()
        if failures:
            raise failures[0]
        last_emit = wall_us()
        event = {"run": run, "n": n, "i": i, "t": last_emit, "body": body}
        task = loop.create_task(client.emit(topic, event))
        pending.add(task)
        task.add_done_callback(settled)
    while pending:
        await asyncio.wait(set(pending))
    if failures:
        raise failures[0]
    return {
        "run": run,
        "first_emit_us": first_emit,
        "last_emit_us": last_emit,
        "last_ack_us": wall_us(),
    }


async def serve(bootstrap: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with KafkaClient(bootstrap, client_id="kafka-bench") as client:
        print("READY 0", flush=True)
        while line := await reader.readline():
            if not line.strip():
                continue
            result = await play(client, orjson.loads(line))
            sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
            sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kafka_producer")
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    run_with_uvloop(lambda: serve(args.bootstrap))


if __name__ == "__main__":
    main()
