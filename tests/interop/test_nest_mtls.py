"""A Nest 11 client with ``tlsOptions`` calls vidmesh's user service over mutual TLS.

The service runs as deployed (TLS on, admitting only ``api-gateway``) with certificates made by
``vidmesh.devstack.certs``; the Nest ``ClientProxy`` (``nestpeer/client.js``) presents the
gateway's certificate, trusts the CA and verifies the server as ``user``. Without a certificate,
or with another service's, it gets nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from vidmesh.devstack.certs import Certificates, ensure_certificates
from vidmesh.devstack.nest import NestTls, run_nest_client
from vidmesh.transport import TcpServer
from vidmesh_user.main import build_service
from vidmesh_user.settings import Settings

pytestmark = pytest.mark.interop

FIND_ONE_BY_EMAIL = {"cmd": "findOneByEmail"}  # as the tutorial's gateway writes it
CREATE = {"cmd": "create"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return ensure_certificates(tmp_path_factory.mktemp("tls"), ["user", "api-gateway", "video"])


@pytest.fixture(scope="module")
def database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_user")


@pytest.fixture
async def user_port(
    nest_packages: Path, database_url: str, certificates: Certificates
) -> AsyncIterator[int]:
    """The user service on a free port, mutual TLS on (its defaults: only the gateway)."""
    settings = Settings(
        port=0,
        database_url=database_url,
        drain_timeout=5,
        tls_cert=certificates.cert("user"),
        tls_key=certificates.key("user"),
        tls_ca=certificates.ca,
    )
    async with build_service(settings) as service:
        yield cast(TcpServer, service.transports[0]).port


def as_service(certificates: Certificates, name: str) -> NestTls:
    return NestTls(
        key=certificates.key(name),
        cert=certificates.cert(name),
        ca=certificates.ca,
        servername="user",
    )


def calls(email: str) -> list[dict[str, Any]]:
    return [
        {"kind": "send", "pattern": CREATE, "data": {"email": email, "password": "Tls-Passw0rd!"}},
        {"kind": "send", "pattern": FIND_ONE_BY_EMAIL, "data": email},
    ]


async def test_a_nest_client_with_the_gateways_certificate_is_served(
    user_port: int, certificates: Certificates
) -> None:
    email = f"nest-tls-{uuid.uuid4().hex}@example.com"
    created, found = await run_nest_client(
        user_port, calls(email), tls=as_service(certificates, "api-gateway")
    )
    assert "ok" in created, created
    assert found == {"ok": {"id": created["ok"]["id"]}}


@pytest.mark.parametrize("caller", [None, "video"])
async def test_a_nest_client_without_an_admitted_certificate_gets_nothing(
    user_port: int, certificates: Certificates, caller: str | None
) -> None:
    email = f"nest-tls-{uuid.uuid4().hex}@example.com"
    tls = None if caller is None else as_service(certificates, caller)
    results = await run_nest_client(user_port, calls(email), tls=tls, call_timeout=3.0)
    assert all(result.get("local") for result in results), results  # failed on its own side
