"""Raw TCP to a running system's services, as the gateway would connect: over mutual TLS with
the gateway's certificate (plain TCP when the system runs with TLS off). The frame-level tests
play an admitted caller that sends garbage; test_service_identity.py covers callers that are not
admitted. Every raw connection of the security suite opens here."""

from __future__ import annotations

import asyncio
from typing import Any

from vidmesh.devstack.system import RunningSystem
from vidmesh.transport.tcp.framing import FrameDecoder, encode_frame

LOOPBACK = "127.0.0.1"


async def open_service_connection(
    system: RunningSystem, service: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to ``service``'s TCP port (``user``, ``video``, ``analytics``), as the
    gateway."""
    context = system.client_tls("api-gateway")
    port = system.service(service).port
    if context is None:
        return await asyncio.open_connection(LOOPBACK, port)
    return await asyncio.open_connection(LOOPBACK, port, ssl=context, server_hostname=service)


async def close(*writers: asyncio.StreamWriter) -> None:
    """Cut the connections at once (an attacker says no TLS goodbye) and let the loop release
    their sockets before it ends (an unreleased one is a ResourceWarning, an error here)."""
    for writer in writers:
        writer.transport.abort()
    await asyncio.sleep(0.1)


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
        await close(writer)
