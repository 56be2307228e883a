"""``python -m benchmarks objectstore [--rounds N] [--quick]``: the embedded SeaweedFS's memory.

Starts a ``SeaweedStore`` (the flags ``vidmesh up`` uses) in a temporary folder and reports its
start and stop times, its resident set size idle, and its peak under rounds of 32 concurrent
1 MiB PUTs then 32 concurrent GETs of them (signed, through botocore, one thread per request).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
from vidmesh.devstack.objectstore import SeaweedStore
from vidmesh.devstack.s3 import s3_client

MiB = 1024 * 1024
CONCURRENCY = 32


class PeakRss:
    """The largest resident set size of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        return int(self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())


def _get(client: Any, key: str) -> bytes:
    data: bytes = client.get_object(Bucket="load", Key=key)["Body"].read()
    return data


def _load(client: Any, rounds: int) -> float:
    """Rounds of 32 concurrent 1 MiB PUTs then GETs; returns the seconds taken."""
    body = os.urandom(MiB)
    client.create_bucket(Bucket="load")
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for r in range(rounds):
            keys = [f"{r}/{i}" for i in range(CONCURRENCY)]
            list(pool.map(lambda key: client.put_object(Bucket="load", Key=key, Body=body), keys))
            if any(data != body for data in pool.map(lambda key: _get(client, key), keys)):
                raise AssertionError("a GET returned other bytes")
    return time.monotonic() - started


def measure(rounds: int) -> dict[str, float]:
    store = SeaweedStore()
    started = time.monotonic()
    store.start()
    result = {"start_s": time.monotonic() - started}
    try:
        time.sleep(2)  # the admin server and its workers settle
        client = s3_client(store.access, connections=CONCURRENCY)
        with PeakRss(store.pid) as rss:
            result["idle_rss_mib"] = rss.now() / MiB
            result["load_s"] = _load(client, rounds)
        result["peak_rss_mib"] = rss.peak / MiB
        time.sleep(5)
        result["rss_5s_after_mib"] = rss.now() / MiB
        client.close()
    finally:
        stopping = time.monotonic()
        store.stop()
        result["stop_s"] = time.monotonic() - stopping
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks objectstore")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args(argv)
    result = measure(2 if args.quick else args.rounds)
    print(json.dumps({"benchmark": "objectstore", **{k: round(v, 2) for k, v in result.items()}}))
    return 0
