"""``python -m benchmarks <name> [options]``: run one benchmark; each ends with a JSON line."""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

BENCHMARKS = {
    "rpc": "TCP request-response round trips, vidmesh against NestJS",
    "kafka": "Kafka events, throughput and latency from emit to handler, vidmesh against NestJS",
    "platform": "the whole system under a mixed HTTP load: req/s, p50/p99, peak RSS, event lag",
    "objectstore": "the embedded SeaweedFS: start and stop times, RSS idle and under 1 MiB PUT/GET",
}


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so every peer process is stopped


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m benchmarks <name> [options]\n", file=sys.stderr)
        for name, about in BENCHMARKS.items():
            print(f"  {name:<9} {about}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    benchmark = importlib.import_module(f"benchmarks.{argv[0]}")
    status: int = benchmark.main(argv[1:])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
