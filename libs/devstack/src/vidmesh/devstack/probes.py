"""Readiness probes for the supervisor's children: a TCP service answering the health pattern
with ``ok``, or an HTTP endpoint answering 200."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import httpx
from vidmesh.contracts import HEALTH, Health
from vidmesh.transport import ClientOptions, TcpClient

Probe = Callable[[], Awaitable[bool]]
"""True when the child is ready; called again every ``probe_interval`` until it is."""


def tcp_health_probe(
    host: str,
    port: int,
    *,
    timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Probe:
    """Ready when the TCP service answers the contracts' health pattern with ``ok`` (over
    mutual TLS with ``ssl_context``, the server verified as ``server_hostname``)."""
    options = ClientOptions(request_timeout=timeout, connect_timeout=timeout, connect_attempts=1)

    async def probe() -> bool:
        client = TcpClient(
            host, port, options=options, ssl_context=ssl_context, server_hostname=server_hostname
        )
        async with client:
            return Health.model_validate(await client.send(HEALTH)).ok

    return probe


def http_probe(url: str, *, timeout: float = 2.0) -> Probe:
    """Ready when ``GET url`` answers 200."""

    async def probe() -> bool:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return (await client.get(url)).status_code == httpx.codes.OK

    return probe
