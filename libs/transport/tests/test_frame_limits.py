"""A frame's deadline from its first byte and the server-wide cap on bytes held in incomplete
frames, against a real TcpServer over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs
from vidmesh.transport import ServerOptions
from vidmesh.transport.testing import echo_router, read_until_closed, serve_tcp, wait_until

KiB = 1024


def frame(packet: Any) -> bytes:
    body = json.dumps(packet, separators=(",", ":"))
    return f"{len(body)}#{body}".encode()


def close_reasons(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "connection_closed"]


async def close_raw(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


async def test_a_frame_trickling_a_byte_at_a_time_is_closed_at_its_deadline(
    logs: list[MutableMapping[str, Any]],
) -> None:
    # Each byte comes well within the deadline: only a deadline from the first byte ends it.
    options = ServerOptions(incomplete_frame_timeout=0.5)
    async with serve_tcp(echo_router(), options=options) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        data = frame({"pattern": "echo", "data": "x" * 200, "id": "1"})
        started = time.monotonic()

        async def trickle() -> None:
            for byte in data[:-1]:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        trickling = asyncio.create_task(trickle())
        try:
            assert await read_until_closed(reader, timeout=5.0) == b""
            waited = time.monotonic() - started
        finally:
            trickling.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await trickling
            await close_raw(writer)
        assert options.incomplete_frame_timeout <= waited < 1.5
        assert close_reasons(logs) == ["incomplete_frame_timeout"]
        assert await served.client.send("echo", "still served", timeout=2.0) == "still served"


async def test_a_slow_frame_whole_within_its_deadline_and_the_next_one_are_answered(
    logs: list[MutableMapping[str, Any]],
) -> None:
    options = ServerOptions(incomplete_frame_timeout=1.0)
    async with serve_tcp(echo_router(), options=options) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            for request_id in ("1", "2", "3"):  # each frame gets a deadline of its own
                data = frame({"pattern": "echo", "data": request_id, "id": request_id})
                for start in range(0, len(data), 10):
                    writer.write(data[start : start + 10])
                    await asyncio.sleep(0.06)
                answer = await asyncio.wait_for(reader.readuntil(b"}"), 2.0)
                assert b'"response":"%s"' % request_id.encode() in answer
        finally:
            await close_raw(writer)
        assert close_reasons(logs) == []


async def test_half_frames_on_many_connections_stay_under_the_servers_cap(
    logs: list[MutableMapping[str, Any]],
) -> None:
    cap = 1000 * KiB
    options = ServerOptions(max_frame_length=512 * KiB, max_incomplete_bytes=cap)
    peers = 8
    async with serve_tcp(echo_router(), options=options) as served:
        half = frame({"pattern": "echo", "data": "x" * (500 * KiB), "id": "1"})[: 256 * KiB]
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(peers):
                _, writer = await asyncio.open_connection("127.0.0.1", served.port)
                writers.append(writer)
                writer.write(half)
                await writer.drain()
                await asyncio.sleep(0.05)
                assert served.server.incomplete_bytes <= cap
            # Each holds over a quarter of the cap: three fit, every later one is refused.
            await wait_until(
                lambda: close_reasons(logs).count("incomplete_bytes_exceeded") == peers - 3
            )
            assert served.server.incomplete_bytes <= cap
            assert await served.client.send("echo", "still served", timeout=2.0) == "still served"
            assert len(served.server.connections) == 3 + 1  # and the healthy client's
        finally:
            for writer in writers:
                await close_raw(writer)
        await wait_until(lambda: served.server.incomplete_bytes == 0)


async def test_bytes_of_a_frame_completed_are_given_back_to_the_cap() -> None:
    options = ServerOptions(max_frame_length=512 * KiB, max_incomplete_bytes=600 * KiB)
    async with serve_tcp(echo_router(), options=options) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port, limit=KiB * KiB)
        data = frame({"pattern": "echo", "data": "y" * (400 * KiB), "id": "1"})
        try:
            for _ in range(5):  # 5 x 400 KiB through a 600 KiB cap, one after the other
                writer.write(data[: len(data) // 2])
                await writer.drain()
                await wait_until(lambda: served.server.incomplete_bytes > 0)
                writer.write(data[len(data) // 2 :])
                answer = await asyncio.wait_for(reader.readuntil(b"}"), 3.0)
                assert answer.count(b"y") == 400 * KiB
                await wait_until(lambda: served.server.incomplete_bytes == 0)
        finally:
            await close_raw(writer)
