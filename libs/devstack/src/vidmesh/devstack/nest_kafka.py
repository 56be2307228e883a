"""Real NestJS Kafka peers (Nest's Kafka transporter on kafkajs), run with Node.js.

``kafka-server.js`` is a Nest microservice on ``Transport.KAFKA``; ``kafka-client.js`` a Nest
``ClientKafka``. Packages come from ``nest.node_modules()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vidmesh.devstack.nest import (
    NestPeerError,
    drain_lines,
    node_binary,
    node_env,
    script,
    stop_node,
)

# -- Kafka peers ---------------------------------------------------------------------------------


def _kafka_env() -> dict[str, str]:
    # kafkajs 2 warns once about its new default partitioner; the peers key nothing by it.
    return {**node_env(), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}


class NestKafkaServer:
    """A running ``kafka-server.js``: the events its ``@EventPattern`` handler received.

    Each event is ``{"topic", "partition", "key", "headers", "data"}`` as the Nest handler saw it
    (KafkaParser's output: JSON objects and arrays parsed, other values as strings, a value with a
    leading zero byte as ``{"buffer": "<hex>"}``).
    """

    def __init__(self) -> None:
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ready = threading.Event()
        self.stdout_tail: deque[str] = deque(maxlen=50)
        """Lines of its stdout that were neither the ready line nor an event."""

    def _read(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    message = None
                if isinstance(message, dict) and "event" in message:
                    self._events.put(message["event"])
                elif isinstance(message, dict) and message.get("ready") is True:
                    self._ready.set()
                else:
                    self.stdout_tail.append(line)

    def take_events(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The next ``count`` events, in the order the Nest server handled them (blocking; call
        it through ``asyncio.to_thread`` from a coroutine). Raises NestPeerError naming the
        events that did arrive if fewer than ``count`` came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while len(events) < count:
            try:
                events.append(self._events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise NestPeerError(
                    f"the Nest Kafka server received {len(events)} of {count} events in "
                    f"{timeout}s: {events!r}"
                ) from None
        return events

    def pending_events(self) -> list[dict[str, Any]]:
        """The events received and not yet taken, without waiting."""
        events: list[dict[str, Any]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.append(self._events.get_nowait())
        return events


@contextlib.contextmanager
def nest_kafka_server(
    bootstrap: str,
    topics: Mapping[str, str],
    *,
    group: str,
    client_id: str = "vidmesh-nest-kafka-server",
    startup_timeout: float = 60.0,
) -> Iterator[NestKafkaServer]:
    """Run ``kafka-server.js`` (a Nest Kafka microservice) until the ``with`` block ends.

    ``topics`` maps each of its handlers (``event``, ``echo``, ``describe``, ``notFound``,
    ``crash``; see the script) to the topic it serves. Yields once its consumer joined ``group``;
    it reads each topic from the beginning, so what was sent before is not lost.
    """
    process = subprocess.Popen(
        [
            node_binary(),
            str(script("kafka-server.js")),
            "--brokers",
            bootstrap,
            "--client-id",
            client_id,
            "--group",
            group,
            "--topics",
            json.dumps(dict(topics)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=_kafka_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    server = NestKafkaServer()
    stderr_tail: deque[str] = deque(maxlen=200)
    readers = [
        threading.Thread(target=drain_lines, args=(process.stderr, stderr_tail), daemon=True),
        threading.Thread(target=server._read, args=(process.stdout,), daemon=True),
    ]
    with process:  # closes the pipes on the way out
        try:
            for reader in readers:
                reader.start()
            deadline = time.monotonic() + startup_timeout
            while not server._ready.wait(0.05):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise NestPeerError(
                        f"Nest Kafka server did not start (exit status {process.poll()}): "
                        f"{''.join(server.stdout_tail)}{''.join(stderr_tail)}"
                    )
            yield server
        finally:
            stop_node(process)
            for reader in readers:
                reader.join(timeout=5)


async def run_nest_kafka_client(
    bootstrap: str,
    calls: Sequence[Mapping[str, Any]],
    *,
    group: str,
    client_id: str = "vidmesh-nest-kafka-client",
    call_timeout: float = 10.0,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """Play ``calls`` with ``kafka-client.js`` (a Nest ``ClientKafka``, its reply consumer in
    consumer group ``group``).

    Each call is ``{"kind": "send" | "stream" | "emit", "pattern": topic, "data": ...}`` (see
    ``kafka-client.js``); the result has one ``{"ok": value}`` or ``{"err": error}`` per call.
    Runs Node.js as an asyncio subprocess, so a server in the same event loop keeps answering.
    ``call_timeout`` bounds each call, ``timeout`` the whole run (joining the group included).
    """
    runs = await run_nest_kafka_clients(
        bootstrap,
        [calls],
        group=group,
        client_id=client_id,
        call_timeout=call_timeout,
        timeout=timeout,
    )
    return runs[0].results


@dataclass(frozen=True)
class NestKafkaClientRun:
    """What one ``kafka-client.js`` did: its results, and the partitions of each reply topic its
    group gave it (Nest sends the lowest as ``kafka_replyPartition``)."""

    results: list[dict[str, Any]]
    reply_partitions: dict[str, list[int]]


async def run_nest_kafka_clients(
    bootstrap: str,
    scenarios: Sequence[Sequence[Mapping[str, Any]]],
    *,
    group: str,
    client_id: str = "vidmesh-nest-kafka-client",
    reply_partitions_at_most: int | None = None,
    call_timeout: float = 10.0,
    timeout: float = 60.0,
) -> list[NestKafkaClientRun]:
    """Play each scenario (a list of calls, as for ``run_nest_kafka_client``) with its own
    ``kafka-client.js``, all at once and all in consumer group ``group``.

    With ``reply_partitions_at_most``, each client waits before its first call until the group
    gave it at most that many partitions of each reply topic (the others joined); each stays in
    the group until all have their results, so no member leaves while another has calls in
    flight. Every Node.js process has ended when this returns or raises.
    """
    with tempfile.TemporaryDirectory(prefix="nest-kafka-calls-") as folder:
        processes: list[asyncio.subprocess.Process] = []
        readers: list[asyncio.Future[NestKafkaClientRun]] = []
        try:
            for n, calls in enumerate(scenarios):
                path = Path(folder) / f"calls-{n}.json"
                path.write_text(json.dumps(list(calls)), encoding="utf-8")
                args = [
                    "--calls",
                    str(path),
                    "--hold",
                    "--timeout",
                    str(round(call_timeout * 1000)),
                ]
                if reply_partitions_at_most is not None:
                    args += ["--reply-partitions-at-most", str(reply_partitions_at_most)]
                name = f"{client_id}-{n}" if len(scenarios) > 1 else client_id
                processes.append(await _start_kafka_client(bootstrap, name, group, args))
            readers = [asyncio.ensure_future(_client_results(p)) for p in processes]
            async with asyncio.timeout(timeout):
                runs = await asyncio.gather(*readers)
                for process in processes:
                    assert process.stdin is not None
                    process.stdin.close()  # now they leave the group and exit
                codes = await asyncio.gather(*(process.wait() for process in processes))
        except TimeoutError:
            raise NestPeerError(f"Nest Kafka clients did not finish in {timeout}s") from None
        finally:
            for reader in readers:
                reader.cancel()
            for process in processes:
                if process.returncode is None:
                    process.kill()
                await process.wait()
            await asyncio.gather(*readers, return_exceptions=True)
    if any(codes):
        raise NestPeerError(f"Nest Kafka clients exited with {codes} after their results")
    return runs


async def _start_kafka_client(
    bootstrap: str, client_id: str, group: str, args: Sequence[str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        node_binary(),
        str(script("kafka-client.js")),
        "--brokers",
        bootstrap,
        "--client-id",
        client_id,
        "--group",
        group,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_kafka_env(),
    )


async def _client_results(process: asyncio.subprocess.Process) -> NestKafkaClientRun:
    """Read ``kafka-client.js``'s output up to its results line (stderr read alongside)."""
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.ensure_future(process.stderr.read())
    reply_partitions: dict[str, list[int]] = {}
    seen: list[str] = []
    try:
        while line := (await process.stdout.readline()).decode(errors="replace"):
            if line.startswith("["):
                return NestKafkaClientRun(json.loads(line), reply_partitions)
            if line.startswith('{"replyPartitions"'):
                reply_partitions = json.loads(line)["replyPartitions"]
            else:
                seen.append(line)
        await process.wait()
        raise NestPeerError(
            f"Nest Kafka client exited with {process.returncode} before its results: "
            f"{''.join(seen)}{(await stderr).decode(errors='replace')}"
        )
    finally:
        if not stderr.done():
            stderr.cancel()
