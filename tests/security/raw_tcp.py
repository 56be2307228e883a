"""Raw TCP to a running system's services, as an attacker on their network would connect.

Every raw connection of the security suite opens here, so a change in how services admit
callers (mutual TLS) changes this one function and no test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vidmesh.devstack.system import RunningSystem
from vidmesh.transport.tcp.framing import FrameDecoder, encode_frame

LOOPBACK = "127.0.0.1"


async def open_service_connection(
    system: RunningSystem, service: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to ``service``'s TCP port (``user``, ``video``, ``analytics``)."""
    return await asyncio.open_connection(LOOPBACK, system.service(service).port)


async def call(
    system: RunningSystem, service: str, pattern: Any, data: Any, *, timeout: float = 10.0
) -> dict[str, Any]:
    """One request on a connection of its own; the answer packet (``response`` or ``err``)."""
    reader, writer = await open_service_connection(system, service)
    try:
        writer.write(encode_frame({"pattern": pattern, "data": data, "id": "1"}))
        decoder = FrameDecoder(64 * 1024 * 1024)
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                assert chunk, "the service closed the connection without answering"
                for packet in decoder.feed(chunk):
                    answer: dict[str, Any] = packet
                    return answer
    finally:
        writer.close()
