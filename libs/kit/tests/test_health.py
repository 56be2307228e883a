"""The health pattern over a real TCP server, and the broker reachability probe."""

from __future__ import annotations

import asyncio

import pytest
from vidmesh.contracts import HEALTH
from vidmesh.kit import health
from vidmesh.kit.cli import tcp_health
from vidmesh.kit.health import broker_reachable, health_router
from vidmesh.transport.testing import serve_tcp


async def _true() -> bool:
    return True


async def _false() -> bool:
    return False


async def _hangs() -> bool:
    await asyncio.sleep(60)
    return True


async def test_health_is_ok_only_when_every_check_passes() -> None:
    router = health_router("demo", {"database": _true, "broker": _false})
    async with serve_tcp(router) as served:
        answer = await served.client.send(HEALTH)
    assert answer == {"service": "demo", "ok": False, "checks": {"database": True, "broker": False}}


async def test_a_check_that_hangs_counts_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.1)
    router = health_router("demo", {"database": _hangs})
    async with serve_tcp(router) as served:
        answer = await served.client.send(HEALTH)
    assert answer["ok"] is False


async def test_broker_reachable_tries_each_bootstrap_address(kafka_bootstrap: str) -> None:
    assert await broker_reachable(f"127.0.0.1:1,{kafka_bootstrap}") is True
    assert await broker_reachable("127.0.0.1:1") is False


async def test_tcp_health_answers_for_a_running_service() -> None:
    router = health_router("demo", {"database": _true})
    async with serve_tcp(router) as served:
        healthy = await asyncio.to_thread(tcp_health, "0.0.0.0", served.port)
    assert healthy is True
    assert await asyncio.to_thread(tcp_health, "127.0.0.1", 1) is False
