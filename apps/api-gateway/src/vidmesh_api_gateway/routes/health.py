"""``/healthz`` (the process answers), ``/readyz`` (it can serve: its own database answers) and
``/health/dependencies`` (the services and the broker behind it).

Readiness is the gateway's own: a service or the broker being down makes every replica
unready at once if readiness depends on it, so the load balancer would send nobody anywhere
(even the public catalogue's errors and the docs); the routes that need a service answer 503
themselves. The dependencies' state is for people and monitoring, on a route no probe uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import APIRouter, Response
from vidmesh.kit.health import broker_reachable
from vidmesh.transport import TransportError

from vidmesh_api_gateway.clients import ServiceClient
from vidmesh_api_gateway.dependencies import Gateway, GatewayDep
from vidmesh_api_gateway.errors import GatewayError, error_response
from vidmesh_api_gateway.schemas import Alive, Readiness, error_responses

router = APIRouter(tags=["Health"])

CHECK_TIMEOUT: Final = 2.0


@router.get("/healthz")
async def healthz() -> Alive:
    """200 while the process serves HTTP (a liveness probe)."""
    return Alive()


@router.get("/readyz", response_model=Readiness, responses=error_responses(503))
async def readyz(gateway: GatewayDep) -> Response:
    """200 when the gateway can serve (its database answers); else 503 (a readiness probe)."""
    return await _report({"database": gateway.database.ping}, "Not ready")


@router.get("/health/dependencies", response_model=Readiness, responses=error_responses(503))
async def dependencies(gateway: GatewayDep) -> Response:
    """200 when its database, the three services and the broker answer; else 503 naming the
    checks that failed. For monitoring, not for a probe."""
    return await _report(_checks(gateway), "Unavailable")


async def _report(checks: dict[str, Callable[[], Awaitable[bool]]], failing: str) -> Response:
    results = await asyncio.gather(*(_bounded(check) for check in checks.values()))
    named = dict(zip(checks, results, strict=True))
    failed = [name for name, ok in named.items() if not ok]
    if failed:
        return error_response(503, f"{failing}: {', '.join(failed)}", checks=named)
    return Response(Readiness(checks=named).model_dump_json(), media_type="application/json")


def _checks(gateway: Gateway) -> dict[str, Callable[[], Awaitable[bool]]]:
    clients = gateway.clients
    return {
        "database": gateway.database.ping,
        "user": _service_check(clients.user),
        "video": _service_check(clients.video),
        "analytics": _service_check(clients.analytics),
        "broker": lambda: broker_reachable(gateway.settings.kafka_bootstrap),
    }


def _service_check(client: ServiceClient) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await client.health(CHECK_TIMEOUT)).ok

    return check


async def _bounded(check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except (TimeoutError, OSError, TransportError, GatewayError):
        return False
