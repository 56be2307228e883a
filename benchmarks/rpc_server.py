"""The Python side of the RPC benchmark: a vidmesh TCP server with an ``echo`` handler, on uvloop.

Run as ``python -m benchmarks.rpc_server --port 0``; prints ``READY <port>`` once listening and
stops cleanly on SIGTERM or SIGINT. Logs only warnings and errors, to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

import structlog
from vidmesh.transport import Microservice, Router, TcpServer, run_with_uvloop

router = Router()


@router.message("echo")
def echo(data: Any) -> Any:
    """Answer the payload as it came, like the Nest peer's ``echo``."""
    return data


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = TcpServer(host, port)
    async with Microservice("rpc-bench", router, transports=[server]):
        print(f"READY {server.port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rpc_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    run_with_uvloop(lambda: serve(args.host, args.port))


if __name__ == "__main__":
    main()
