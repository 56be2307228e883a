"""The load generator of ``python -m benchmarks platform``: a separate process driving the gateway.

``python -m benchmarks.platform_load <plan.json>`` reads a plan (the gateway URL, accounts,
video ids, and the phases to run), runs each phase with a fixed number of concurrent clients
(HTTP/1.1 keep-alive connections, one per client) and prints one JSON line: per phase and
endpoint, the request count, req/s, p50 and p99 in ms, and the errors.

A phase is ``mixed`` (each client picks an endpoint by weight, over and over), ``upload`` or
``download`` (1 MiB each, back to back, through the gateway), ``store_get`` or ``store_put``
(1 MiB each, straight to the object store on presigned URLs: the store's own rate, measured
by the same client) or ``paced_downloads`` (a fixed rate of whole downloads of a tiny video,
each counted by analytics, for the download-to-counted lag).

The client (``http_connection.py``) is a few lines of asyncio over httptools (uvicorn's C
parser), not httpx: this process shares the machine's cores with the system it measures, and
httpx spent about 6 ms of CPU per 1 MiB download, as much as the gateway. Every response is
read to its end (its length checked by the parser) before the request counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from benchmarks.http_connection import HttpConnection, HttpError

Endpoint = Callable[["Client"], Awaitable[int]]
"""Sends one request; returns the response's status code."""

PACED_GRACE = 5.0
"""Seconds the paced phase waits for queued downloads after its last one was offered."""
TIMEOUT = 60.0
"""Seconds one request may take before it counts as an error."""

MIXED_WEIGHTS = {
    "signin": 1,
    "list": 3,
    "metadata": 4,
    "download_1mib": 8,
    "top": 2,
}


@dataclass
class Client:
    """One simulated user: a connection, an access token and the plan's shared data."""

    host: str
    port: int
    token: str
    plan: dict[str, Any]
    rng: random.Random
    upload_body: bytes
    connection: HttpConnection | None = None
    _upload: tuple[str, bytes] | None = None

    def video(self) -> str:
        return str(self.rng.choice(self.plan["videos"]))

    async def send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = False,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> int:
        """One request on this client's connection (opened again if it was lost)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if auth:
            lines.append(f"Authorization: Bearer {self.token}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if self.connection is None:
            self.connection = await HttpConnection.open(self.host, self.port)
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self.connection.request(head, body)
        except BaseException:
            self.close()  # a response left half read would confuse the next request
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


async def signin(client: Client) -> int:
    account = client.rng.choice(client.plan["accounts"])
    body = json.dumps(account).encode()
    headers = {"Content-Type": "application/json"}
    return await client.send("POST", "/api/auth/signin", headers=headers, body=body)


async def list_videos(client: Client) -> int:
    return await client.send("GET", "/api/videos?" + urlencode({"page": 1, "size": 20}))


async def metadata(client: Client) -> int:
    return await client.send("GET", f"/api/videos/{client.video()}")


async def download_1mib(client: Client) -> int:
    return await client.send("GET", f"/api/videos/{client.video()}/download", auth=True)


async def download_tiny(client: Client) -> int:
    """A whole download (so it counts) of a video of a few dozen bytes: the event path's cost,
    not the bytes'."""
    path = f"/api/videos/{client.rng.choice(client.plan['tiny_videos'])}/download"
    return await client.send("GET", path, auth=True)


async def store_get_1mib(client: Client) -> int:
    """A presigned GET straight from the object store (the store's own rate, for the ratio)."""
    return await client.send("GET", client.rng.choice(client.plan["store_get_paths"]))


async def store_put_1mib(client: Client) -> int:
    """A presigned PUT of 1 MiB straight into the object store."""
    path = client.rng.choice(client.plan["store_put_paths"])
    return await client.send("PUT", path, body=client.upload_body)


async def top(client: Client) -> int:
    return await client.send("GET", "/api/analytics/top?" + urlencode({"limit": 10}))


async def upload_1mib(client: Client) -> int:
    if client._upload is None:  # built once per client: the same bytes each time
        client._upload = multipart_upload(client.upload_body)
    boundary, body = client._upload
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return await client.send("POST", "/api/videos", auth=True, headers=headers, body=body)


def multipart_upload(video: bytes, title: str = "bench") -> tuple[str, bytes]:
    """A ``multipart/form-data`` body with a ``title`` field and a ``video`` file."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="title"\r\n\r\n',
            title.encode(),
            f"\r\n--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="video"; filename="bench.mp4"\r\n',
            b"Content-Type: video/mp4\r\n\r\n",
            video,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return boundary, body


ENDPOINTS: dict[str, Endpoint] = {
    "signin": signin,
    "list": list_videos,
    "metadata": metadata,
    "download_1mib": download_1mib,
    "top": top,
    "upload_1mib": upload_1mib,
    "download_tiny": download_tiny,
    "store_get_1mib": store_get_1mib,
    "store_put_1mib": store_put_1mib,
}


@dataclass
class Samples:
    """Latencies (seconds) and error statuses per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    async def timed(self, name: str, client: Client) -> None:
        started = time.perf_counter()
        try:
            ok = await ENDPOINTS[name](client) < 400
        except (HttpError, OSError, TimeoutError):
            ok = False
        if ok:
            self.latencies[name].append(time.perf_counter() - started)
        else:
            self.errors[name] += 1

    def summary(self, seconds: float) -> dict[str, dict[str, float]]:
        names = sorted(set(self.latencies) | set(self.errors))
        return {
            name: _summarise(self.latencies[name], self.errors[name], seconds) for name in names
        }


def _summarise(latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        if not ordered:
            return 0.0
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "count": len(ordered),
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "errors": errors,
    }


async def run_closed_loop(
    clients: list[Client], names: list[str], weights: list[int], seconds: float
) -> dict[str, dict[str, float]]:
    """Every client sends its next request as soon as the last one is answered."""
    samples = Samples()
    deadline = time.perf_counter() + seconds

    async def worker(client: Client) -> None:
        while time.perf_counter() < deadline:
            name = client.rng.choices(names, weights)[0]
            await samples.timed(name, client)

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    return samples.summary(time.perf_counter() - started)


async def run_paced(clients: list[Client], rate: float, seconds: float) -> dict[str, Any]:
    """Tiny downloads offered at ``rate`` per second for ``seconds``, spread over the clients.

    When the system falls behind, what is still queued at the end is dropped (after a short
    grace), so the phase lasts about ``seconds`` and ``rps`` says what was achieved.
    """
    samples = Samples()
    queue: asyncio.Queue[None] = asyncio.Queue()

    async def worker(client: Client) -> None:
        while True:
            await queue.get()
            await samples.timed("download_tiny", client)
            queue.task_done()

    workers = [asyncio.create_task(worker(client)) for client in clients]
    wall_start = time.time()
    started = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) < started + seconds:
        due = int((now - started) * rate) + 1
        for _ in range(due - sent):
            queue.put_nowait(None)
        sent = due
        await asyncio.sleep(0.001)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), PACED_GRACE)
    elapsed = time.perf_counter() - started
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    summary = samples.summary(elapsed)
    window = {"wall_start": wall_start, "wall_end": time.time()}
    return {**summary, "target_rate": rate, "offered": sent, "window": window}


async def run_plan(plan: dict[str, Any], upload_body: bytes) -> dict[str, Any]:
    url = urlsplit(plan["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tokens = itertools.cycle(plan["tokens"])
    clients = [
        Client(host, port, next(tokens), plan, random.Random(index), upload_body)
        for index in range(plan["concurrency"])
    ]
    results: dict[str, Any] = {}
    try:
        for phase in plan["phases"]:
            results[phase["name"]] = await _run_phase(clients, phase)
    finally:
        for client in clients:
            client.close()
    return results


async def _run_phase(clients: list[Client], phase: dict[str, Any]) -> dict[str, Any]:
    kind, seconds = phase["kind"], float(phase["seconds"])
    if kind == "mixed":
        names, weights = list(MIXED_WEIGHTS), list(MIXED_WEIGHTS.values())
        return await run_closed_loop(clients, names, weights, seconds)
    if kind in ("upload", "download"):
        name = f"{kind}_1mib"
        return await run_closed_loop(clients, [name], [1], seconds)
    if kind in ("store_get", "store_put"):
        store = urlsplit(clients[0].plan["store_url"])
        direct = [
            Client(
                store.hostname or "127.0.0.1", store.port or 80, "", c.plan, c.rng, c.upload_body
            )
            for c in clients
        ]
        try:
            return await run_closed_loop(direct, [f"{kind}_1mib"], [1], seconds)
        finally:
            for client in direct:
                client.close()
    if kind == "paced_downloads":
        return await run_paced(clients, float(phase["rate"]), seconds)
    raise ValueError(f"unknown phase kind {kind!r}")


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    upload_body = Path(plan["upload_file"]).read_bytes()
    try:
        import uvloop

        results = uvloop.run(run_plan(plan, upload_body))
    except ImportError:  # pragma: no cover - uvloop is installed on every POSIX machine
        results = asyncio.run(run_plan(plan, upload_body))
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
