"""``python -m benchmarks platform``: the whole system under a mixed load through its gateway.

Starts the platform as ``vidmesh up`` does (four service processes, an embedded PostgreSQL and
broker; a fresh data folder), signs up a few accounts and uploads 1 MiB videos, then runs the
load generator (``benchmarks.platform_load``) in a process of its own with a fixed number of
concurrent clients through these phases:

- ``mixed``: signin, list, metadata, 1 MiB downloads and top, picked by weight;
- ``download`` and ``upload``: 1 MiB each, back to back (the tutorial's figures are for these);
- ``store_get`` and ``store_put``: 1 MiB each straight to the object store on presigned URLs,
  by the same client at the same concurrency: the store's own rate, which the gateway's
  streamed paths are compared with (``ratio_download_vs_store``, ``ratio_upload_vs_store``);
- ``paced_downloads``: whole downloads of a tiny video offered at 1,000/s (or
  ``--paced-rate``). Each counts, so the lag from the download (the event's
  ``downloadedAt``, stamped by the video service) to its count (the inbox row's
  ``processed_at`` in analytics) is read back from the two databases afterwards. A system that
  cannot serve the offered rate drops what it cannot take: ``rate`` in the result says what it
  achieved, and the lag is the lag at that rate.

Meanwhile each service's resident memory is sampled every 50 ms, and the CPU time of every
process of the system (PostgreSQL's included), of the load generator and of the whole machine is
taken over the load: ``others`` is what the rest of the machine used meanwhile (a noisy figure
when it is not near 0). It prints a table, the ratios to the tutorial's NestJS system as the
issue measured it on this kind of machine (the targets), and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
from vidmesh.devstack.databases import url_for
from vidmesh.devstack.samples import sample_mp4
from vidmesh.devstack.system import RunningSystem, running_system

from benchmarks.peers import ROOT, BenchmarkError

MiB = 1024 * 1024
PASSWORD = "Bench-Password-1!"

NEST_TUTORIAL = {
    "download_rps": 11.0,
    "upload_rps": 10.0,
    "p99_ms": 4000.0,
    "gateway_rss_mib": 800.0,
    "video_rss_mib": 1200.0,
}
"""The tutorial's own system at 32 clients on this kind of machine (figures from the issue)."""


@dataclass(frozen=True)
class Settings:
    concurrency: int = 32
    accounts: int = 8
    videos: int = 16
    mixed_seconds: float = 20.0
    transfer_seconds: float = 15.0
    paced_seconds: float = 10.0
    paced_rate: float = 1000.0


# The load signs a few accounts in again and again and uploads from every client at once: it
# measures the gateway, not the signin limit or the cap on uploads streamed at once (16).
UNLIMITED = {
    "VIDMESH_API_GATEWAY_SIGNIN_LIMIT_PER_ACCOUNT": "1000000/minute",
    "VIDMESH_API_GATEWAY_MAX_CONCURRENT_UPLOADS": "1024",
}

FULL = Settings()
QUICK = Settings(accounts=4, videos=8, mixed_seconds=5.0, transfer_seconds=4.0, paced_seconds=3.0)


def prepare(gateway: str, settings: Settings, workdir: Path) -> dict[str, Any]:
    """Accounts, their access tokens, and uploaded 1 MiB videos: the load plan's data."""
    body = sample_mp4(MiB)
    upload_file = workdir / "upload.mp4"
    upload_file.write_bytes(body)
    accounts, tokens, videos, tiny_videos = [], [], [], []
    with httpx.Client(base_url=gateway, timeout=60.0) as http:
        for _ in range(settings.accounts):
            email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
            signup = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
            answer = _ok(http.post("/api/auth/signup", json=signup))
            accounts.append({"email": email, "password": PASSWORD})
            tokens.append(answer["accessToken"])
        for index in range(settings.videos):
            files = {"video": (f"bench-{index}.mp4", body, "video/mp4")}
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            data = {"title": f"Benchmark video {index}"}
            answer = _ok(http.post("/api/videos", data=data, files=files, headers=headers))
            videos.append(answer["id"])
            tiny = {"video": (f"tiny-{index}.mp4", sample_mp4(1024), "video/mp4")}
            answer = _ok(http.post("/api/videos", data=data, files=tiny, headers=headers))
            tiny_videos.append(answer["id"])
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        get_urls = [_ok(http.get(f"/api/videos/{v}/url", headers=auth))["url"] for v in videos]
        put_urls = []
        for index in range(settings.concurrency):
            grant = {"filename": f"direct-{index}.mp4", "size": MiB}
            answer = _ok(http.post("/api/videos/uploads", json=grant, headers=auth))
            put_urls.append(answer["parts"][0]["url"])
    store = urlsplit(get_urls[0])
    return {
        "store_url": f"{store.scheme}://{store.netloc}",
        "store_get_paths": [_path(url) for url in get_urls],
        "store_put_paths": [_path(url) for url in put_urls],
        "tiny_videos": tiny_videos,
        "url": gateway,
        "accounts": accounts,
        "tokens": tokens,
        "videos": videos,
        "upload_file": str(upload_file),
        "concurrency": settings.concurrency,
        "phases": [
            {"name": "mixed", "kind": "mixed", "seconds": settings.mixed_seconds},
            {"name": "download", "kind": "download", "seconds": settings.transfer_seconds},
            {"name": "upload", "kind": "upload", "seconds": settings.transfer_seconds},
            {"name": "store_get", "kind": "store_get", "seconds": settings.transfer_seconds},
            {"name": "store_put", "kind": "store_put", "seconds": settings.transfer_seconds},
            {
                "name": "paced_downloads",
                "kind": "paced_downloads",
                "seconds": settings.paced_seconds,
                "rate": settings.paced_rate,
            },
        ],
    }


def _path(url: str) -> str:
    """A presigned URL's path and query: what the load generator's request line carries."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise BenchmarkError(f"{response.request.url.path}: {response.status_code} {response.text}")
    return response.json()


class MemoryWatch:
    """Samples the resident memory of each service process in a thread; keeps the peaks. Also
    takes the CPU seconds each process of the system and the machine used meanwhile."""

    def __init__(self, system: RunningSystem, interval: float = 0.05) -> None:
        self._system = system
        self._interval = interval
        self.peaks: dict[str, float] = {}
        self.baseline: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self._cpu_start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[str, float]:
        sizes = {}
        pids = {status.name: status.pid for status in self._system.services()}
        pids["objectstore"] = self._system.system.object_store_pid
        for name, pid in pids.items():
            if pid is None:
                continue
            try:
                sizes[name] = psutil.Process(pid).memory_info().rss / MiB
            except psutil.Error:
                continue
        return sizes

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, size in self._sample().items():
                self.peaks[name] = max(self.peaks.get(name, 0.0), size)
            self._stop.wait(self._interval)

    def _cpu(self) -> dict[str, float]:
        pids = {status.name: status.pid for status in self._system.services()}
        pids |= {"postgres": self._system.system.postgres_pid}
        pids |= {"broker": self._system.system.broker_pid}
        pids |= {"objectstore": self._system.system.object_store_pid}
        times = {"machine": _busy(psutil.cpu_times())}
        for name, pid in pids.items():
            if pid is None:
                continue
            try:
                process = psutil.Process(pid)
                family = [process] + (process.children() if name == "postgres" else [])
                times[name] = sum(_busy(p.cpu_times()) for p in family)
            except psutil.Error:
                continue
        return times

    def __enter__(self) -> MemoryWatch:
        self.baseline = self._sample()
        self._cpu_start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        end = self._cpu()
        self.cpu_seconds = {
            name: round(end[name] - start, 2)
            for name, start in self._cpu_start.items()
            if name in end
        }


def _busy(times: Any) -> float:
    """CPU seconds from psutil's cpu_times (a process's or the machine's), idle excluded."""
    fields = ("user", "system", "nice", "irq", "softirq")
    return float(sum(getattr(times, field, 0.0) for field in fields))


def run_load(plan: dict[str, Any], workdir: Path) -> dict[str, Any]:
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    started = _children_cpu()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.platform_load", str(plan_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"the load generator failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_generator_cpu_s"] = round(_children_cpu() - started, 2)
    return result


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the load generator's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def counting_lags(
    system: RunningSystem, window: dict[str, float], timeout: float = 30.0
) -> list[float]:
    """Seconds from each download of the paced phase (stamped within ``window``) to its count,
    once analytics counted them all (or ``timeout`` passed: the missing ones are reported)."""
    admin = system.system.postgres_url
    _, video_db, analytics_db, _ = system.system.database_names
    video = await asyncpg.connect(url_for(admin, database=video_db))
    analytics = await asyncpg.connect(url_for(admin, database=analytics_db))
    try:
        rows = await video.fetch("SELECT convert_from(value, 'UTF8') AS event FROM outbox")
        stamped = _paced_events(rows, window)
        deadline = time.monotonic() + timeout
        while True:
            counted = await analytics.fetch(
                "SELECT event_id, processed_at FROM processed_events WHERE event_id = ANY($1)",
                list(stamped),
            )
            if len(counted) >= len(stamped) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await video.close()
        await analytics.close()
    if len(counted) < len(stamped):
        raise BenchmarkError(f"only {len(counted)} of {len(stamped)} paced downloads were counted")
    return [(row["processed_at"] - stamped[row["event_id"]]).total_seconds() for row in counted]


def _paced_events(rows: list[asyncpg.Record], window: dict[str, float]) -> dict[str, datetime]:
    start = datetime.fromtimestamp(window["wall_start"], UTC)
    end = datetime.fromtimestamp(window["wall_end"], UTC)
    stamped = {}
    for row in rows:
        event = json.loads(row["event"])
        downloaded_at = datetime.fromisoformat(event["downloadedAt"])
        if start <= downloaded_at <= end:
            stamped[event["eventId"]] = downloaded_at
    return stamped


def run(settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vidmesh-bench-") as folder:
        workdir = Path(folder)
        with running_system(workdir / "data", extra_env=UNLIMITED) as system:
            plan = prepare(system.gateway_url, settings, workdir)
            with MemoryWatch(system) as memory:
                phases = run_load(plan, workdir)
            window = phases["paced_downloads"].pop("window")
            memory.cpu_seconds["load generator"] = phases.pop("load_generator_cpu_s")
            lags = asyncio.run(counting_lags(system, window))
    return summarise(phases, memory, lags, settings)


def summarise(
    phases: dict[str, Any], memory: MemoryWatch, lags: list[float], settings: Settings
) -> dict[str, Any]:
    download = phases["download"].get("download_1mib", {})
    upload = phases["upload"].get("upload_1mib", {})
    rss = {name: round(peak, 1) for name, peak in sorted(memory.peaks.items())}
    cpu = dict(memory.cpu_seconds)
    machine = cpu.pop("machine", 0.0)
    cpu["others"] = round(max(machine - sum(cpu.values()), 0.0), 2)
    summary: dict[str, Any] = {
        "concurrency": settings.concurrency,
        "phases": phases,
        "peak_rss_mib": rss,
        "cpu_s": cpu,
        "lag_ms": {
            "count": len(lags),
            "p50": _percentile(lags, 0.50),
            "p99": _percentile(lags, 0.99),
            "rate": phases["paced_downloads"]["download_tiny"]["rps"],
            "offered_rate": settings.paced_rate,
        },
    }
    store_get = phases["store_get"].get("store_get_1mib", {})
    store_put = phases["store_put"].get("store_put_1mib", {})
    summary["ratio_download_vs_store"] = _ratio(download.get("rps", 0.0), store_get.get("rps", 0.0))
    summary["ratio_upload_vs_store"] = _ratio(upload.get("rps", 0.0), store_put.get("rps", 0.0))
    summary["vs_nest_tutorial"] = {
        "download_rps_ratio": _ratio(download.get("rps", 0.0), NEST_TUTORIAL["download_rps"]),
        "upload_rps_ratio": _ratio(upload.get("rps", 0.0), NEST_TUTORIAL["upload_rps"]),
        "download_p99_ratio": _ratio(download.get("p99_ms", 0.0), NEST_TUTORIAL["p99_ms"]),
        "upload_p99_ratio": _ratio(upload.get("p99_ms", 0.0), NEST_TUTORIAL["p99_ms"]),
    }
    return summary


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 3) if theirs else 0.0


def print_table(summary: dict[str, Any]) -> None:
    print(f"\nplatform benchmark, {summary['concurrency']} concurrent clients")
    print(f"{'phase':<16}{'endpoint':<22}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for phase, endpoints in summary["phases"].items():
        for endpoint, row in endpoints.items():
            if not isinstance(row, dict):
                continue
            print(
                f"{phase:<16}{endpoint:<22}{row['rps']:>9.1f}{row['p50_ms']:>10.2f}"
                f"{row['p99_ms']:>10.2f}{row['errors']:>8}"
            )
    print("peak RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in summary["peak_rss_mib"].items()))
    print("CPU seconds under load: " + ", ".join(f"{k} {v}" for k, v in summary["cpu_s"].items()))
    lag = summary["lag_ms"]
    print(
        f"download -> counted lag at {lag['rate']:.0f}/s ({lag['offered_rate']:.0f}/s offered): "
        f"p50 {lag['p50']} ms, p99 {lag['p99']} ms ({lag['count']} events)"
    )
    print(
        f"vs the object store itself (same client, same concurrency): downloads/s "
        f"x{summary['ratio_download_vs_store']}, uploads/s x{summary['ratio_upload_vs_store']}"
    )
    ratios = summary["vs_nest_tutorial"]
    print(
        "vs the tutorial's Nest system (issue's figures): downloads/s x"
        f"{ratios['download_rps_ratio']}, uploads/s x{ratios['upload_rps_ratio']}, "
        f"p99 x{ratios['download_p99_ratio']} / x{ratios['upload_p99_ratio']}"
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks platform", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases (under a minute)")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=FULL.paced_rate,
        help="downloads offered per second in the lag phase (default %(default)s)",
    )
    args = parser.parse_args(argv)
    settings = dataclasses.replace(QUICK if args.quick else FULL, paced_rate=args.paced_rate)
    try:
        summary = run(settings)
    except BenchmarkError as error:
        print(f"platform benchmark failed: {error}", file=sys.stderr)
        return 1
    print_table(summary)
    print(json.dumps(summary))
    return 0
