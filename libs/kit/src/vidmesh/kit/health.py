"""The health pattern every service answers, built from its checks (database, broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from vidmesh.contracts import HEALTH, Health
from vidmesh.transport import Router

HealthCheck = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT = 2.0


def health_router(service: str, checks: Mapping[str, HealthCheck]) -> Router:
    """A router answering ``{cmd: 'health'}`` with each check's result (false after 2 s)."""
    router = Router()

    @router.message(HEALTH)
    async def health() -> Health:
        results = await asyncio.gather(*(_bounded(check) for check in checks.values()))
        named = dict(zip(checks, results, strict=True))
        return Health(service=service, ok=all(named.values()), checks=named)

    return router


async def _bounded(check: HealthCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except (TimeoutError, OSError):
        return False


async def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when one of the bootstrap addresses (``host:port,...``) accepts a connection."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False
