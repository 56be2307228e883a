"""Service identity (issue 11, items 1 and 2): the services' TCP ports serve only the callers
that need them, by certificate, and analytics' event handler answers Kafka only.

The finding: any process that reached a service's port was trusted completely (read any user's
email by id, upload as another user, forge download counts). Now the services talk mutual TLS:
a connection without a certificate the platform's CA signed fails its handshake before a frame
is read, and one whose certificate names a caller the service does not admit (only the gateway)
is closed before its first frame, and audited in the service's log."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from vidmesh.contracts import HEALTH, Health
from vidmesh.contracts import analytics as analytics_contract
from vidmesh.contracts.events import VIDEO_DOWNLOADED, VideoDownloaded
from vidmesh.devstack.system import RunningSystem
from vidmesh.transport import ClientOptions, ServiceUnavailable, TcpClient
from vidmesh.transport.testing import read_until_closed

TCP_SERVICES = ("user", "video", "analytics")
ONE_TRY = ClientOptions(connect_attempts=1, connect_timeout=5.0, request_timeout=10.0)


def frame(packet: dict[str, Any]) -> bytes:
    """A packet in Nest's ``<length>#<json>`` framing (ASCII JSON: length in bytes = chars)."""
    body = json.dumps(packet)
    return f"{len(body)}#{body}".encode()


def client(system: RunningSystem, service: str, context: ssl.SSLContext | None) -> TcpClient:
    return TcpClient(
        "127.0.0.1",
        system.service(service).port,
        options=ONE_TRY,
        ssl_context=context,
        server_hostname=service if context is not None else None,
    )


async def raw_plain_tcp(port: int) -> bytes:
    """Everything a plain-TCP peer gets back for a health request, until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame({"pattern": HEALTH, "data": None, "id": "1"}))
        await writer.drain()
        return await read_until_closed(reader, timeout=10.0)
    finally:
        writer.close()


@pytest.mark.parametrize("service", TCP_SERVICES)
def test_raw_tcp_without_a_certificate_is_refused(system: RunningSystem, service: str) -> None:
    received = asyncio.run(raw_plain_tcp(system.service(service).port))
    # At most a TLS alert: never a frame, never an answer; and the connection was closed.
    assert b'"response"' not in received
    assert b"#" not in received


@pytest.mark.parametrize("service", TCP_SERVICES)
def test_the_gateways_certificate_is_admitted(system: RunningSystem, service: str) -> None:
    async def ask() -> Health:
        async with client(system, service, system.client_tls("api-gateway")) as gateway:
            return Health.model_validate(await gateway.send(HEALTH))

    answer = asyncio.run(ask())
    assert answer.ok
    assert answer.service == service


def test_another_services_certificate_is_refused_and_audited(system: RunningSystem) -> None:
    async def ask_as_video() -> None:
        async with client(system, "user", system.client_tls("video")) as video:
            await video.send(HEALTH)

    with pytest.raises(ServiceUnavailable):
        asyncio.run(ask_as_video())
    assert wait_for_line(system, "user", "service_connection_refused", "video")


def test_a_forged_video_downloaded_over_tcp_is_not_counted(system: RunningSystem) -> None:
    video_id = f"forged-{uuid.uuid4().hex}"
    event = VideoDownloaded(
        id=video_id, event_id=uuid.uuid4().hex, downloaded_at=datetime.now(UTC)
    ).to_wire()

    async def forge_then_count() -> int:
        # Even over the gateway's admitted connection: the handler is declared for Kafka only.
        async with client(system, "analytics", system.client_tls("api-gateway")) as gateway:
            for _ in range(5):
                await gateway.emit(VIDEO_DOWNLOADED, event)
            await asyncio.sleep(1.0)  # what a TCP handler would need to count them
            stats = await gateway.send(
                analytics_contract.VIDEO_STATS,
                analytics_contract.VideoStatsQuery(id=video_id).to_wire(),
            )
        return int(analytics_contract.VideoDownloads.model_validate(stats).downloads)

    assert asyncio.run(forge_then_count()) == 0
    assert wait_for_line(system, "analytics", "no_event_handler", VIDEO_DOWNLOADED)


def wait_for_line(system: RunningSystem, service: str, *words: str, timeout: float = 10.0) -> bool:
    """True once a line of the service's log holds every word (logs arrive through a pipe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(all(word in line for word in words) for line in system.logs(service)):
            return True
        time.sleep(0.1)
    return False
