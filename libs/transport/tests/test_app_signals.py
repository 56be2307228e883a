"""Microservice.run() in a real process: SIGINT twice at once (a process group signalled as a
whole, ``uv run`` forwarding the terminal's Ctrl-C) drains like one; a second SIGINT more than
``SIGNAL_REPEAT_WINDOW`` later stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from vidmesh.transport import ConnectionLost, RemoteError, ServiceUnavailable, TcpClient
from vidmesh.transport.app import SIGNAL_REPEAT_WINDOW

SERVICE = """
import asyncio, sys
from vidmesh.transport import Microservice, Router, TcpServer

router = Router()

@router.message("slow")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"

server = TcpServer("127.0.0.1", int(sys.argv[1]))
Microservice("signals", router, transports=[server], drain_timeout=10).run()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def service() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


async def _connect(port: int) -> TcpClient:
    async with asyncio.timeout(20):
        while True:  # polling on purpose: the child process is still importing
            client = TcpClient("127.0.0.1", port)
            try:
                await client.connect()
                return client
            except (OSError, ServiceUnavailable):
                await client.close()
                await asyncio.sleep(0.1)


async def _exit_code(process: subprocess.Popen[str], timeout: float) -> int:
    return await asyncio.to_thread(process.wait, timeout)


async def test_two_sigints_at_once_drain_like_one(
    service: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = service
    client = await _connect(port)
    try:
        call = asyncio.create_task(client.send("slow", 1.5))
        await asyncio.sleep(0.3)  # in flight
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(call, 10) == "finished"
    finally:
        await client.close()
    assert await _exit_code(process, 15) == 0
    assert process.stdout is not None
    output = process.stdout.read()
    assert "service_stopped" in output
    assert "KeyboardInterrupt" not in output


async def test_a_second_sigint_after_the_window_stops_at_once(
    service: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = service
    client = await _connect(port)
    try:
        call = asyncio.create_task(client.send("slow", 30))
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(SIGNAL_REPEAT_WINDOW + 0.5)
        assert process.poll() is None  # still draining the 30 s call
        process.send_signal(signal.SIGINT)
        assert await _exit_code(process, 5) != 0
        with contextlib.suppress(ConnectionLost, RemoteError):
            await asyncio.wait_for(call, 5)
            pytest.fail("the call finished although the service was stopped at once")
    finally:
        await client.close()
