"""The whole platform for end-to-end and security tests (``tests/e2e``, ``tests/security``):
four service processes, a broker of their own and the session's PostgreSQL. A plugin registered
in the root conftest.py, so both suites share one running system.

``system`` (session) is a ``vidmesh.devstack.system.RunningSystem`` on free ports. It starts its
own embedded tansu, so tests can stop and start the broker (``system.stop_broker()``,
``system.start_broker()``) without disturbing other tests' ``kafka_bootstrap``. It shares the
session's PostgreSQL (``postgres_url``) under role and database names of its own
(``e2e_<8 hex>_user-service``...), dropped at the end: no second cluster to initialise.
``gateway`` is an ``httpx.Client`` on the gateway's URL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from vidmesh.devstack.databases import drop_database
from vidmesh.devstack.services import SERVICES
from vidmesh.devstack.system import RunningSystem, running_system

STARTUP_ALLOWANCE = 300
"""Seconds for a test without a timeout of its own: the first one also starts the whole system
(eight Python processes on a shared 2-core machine)."""


SUITES = ("e2e", "security")
"""The folders under tests/ whose tests run against a whole system."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    suites = [here / suite for suite in SUITES]
    for item in items:
        in_suite = any(item.path.is_relative_to(suite) for suite in suites)
        if in_suite and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STARTUP_ALLOWANCE))


@pytest.fixture(scope="session")
def system(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """The running platform (user, video, analytics, api-gateway), all services ready."""
    data_dir: Path = tmp_path_factory.mktemp("vidmesh")
    prefix = f"e2e_{uuid.uuid4().hex[:8]}_"
    try:
        with running_system(data_dir, postgres_url=postgres_url, database_prefix=prefix) as handle:
            yield handle
    finally:
        for service in SERVICES:
            asyncio.run(drop_database(postgres_url, prefix + service.database, role=True))


@pytest.fixture
def gateway(system: RunningSystem) -> Iterator[httpx.Client]:
    """An HTTP client on the gateway (``gateway.post("/api/auth/signup", json=...)``)."""
    with httpx.Client(base_url=system.gateway_url, timeout=30.0) as client:
        yield client
