"""The service identity the settings give: a mutual-TLS listener admitting the allowed callers
and the service itself, and a health command that presents the service's own certificate."""

from __future__ import annotations

import asyncio

import pytest
import trustme
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict
from vidmesh.contracts import HEALTH, Health
from vidmesh.kit.cli import tcp_health
from vidmesh.kit.settings import ServiceSettings
from vidmesh.kit.tls import client_ssl, tcp_server
from vidmesh.transport import Microservice, Router


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIDMESH_DEMO_")
    host: str = "127.0.0.1"
    port: int = 0
    database_url: SecretStr = SecretStr("postgresql://unused@localhost/unused")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoSettings]:
    """Settings for ``demo`` (the server), ``api-gateway`` and ``video``, one CA."""
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(folder / "ca.crt")
    made = {}
    for name in ("demo", "api-gateway", "video"):
        issued = ca.issue_cert(name)
        issued.cert_chain_pems[0].write_to_path(folder / f"{name}.crt")
        issued.private_key_pem.write_to_path(folder / f"{name}.key")
        made[name] = DemoSettings(
            tls_cert=folder / f"{name}.crt",
            tls_key=folder / f"{name}.key",
            tls_ca=folder / "ca.crt",
        )
    return made


def health_router() -> Router:
    router = Router()
    router.message(HEALTH)(lambda: Health(ok=True, service="demo", checks={}).to_wire())
    return router


async def test_the_listener_admits_the_allowed_callers_and_the_service_itself(
    certs: dict[str, DemoSettings],
) -> None:
    server = tcp_server(certs["demo"], "demo")
    assert server.admission is not None
    assert server.admission.allowed == {"api-gateway", "demo"}
    async with Microservice("demo", health_router(), transports=[server]):
        as_itself, as_gateway, as_video = (
            asyncio.to_thread(
                tcp_health,
                "127.0.0.1",
                server.port,
                ssl_context=client_ssl(certs[name]),
                server_hostname="demo",
            )
            for name in ("demo", "api-gateway", "video")
        )
        assert await as_itself
        assert await as_gateway
        assert not await as_video
        assert not await asyncio.to_thread(tcp_health, "127.0.0.1", server.port)  # plain TCP


def test_with_tls_off_the_listener_is_plain_tcp_and_admits_anyone() -> None:
    settings = DemoSettings(tls_enabled=False)
    server = tcp_server(settings, "demo")
    assert server.ssl_context is None
    assert server.admission is None
    assert client_ssl(settings) is None


def test_allowed_callers_replace_the_gateway(certs: dict[str, DemoSettings]) -> None:
    settings = certs["demo"].model_copy(update={"allowed_callers": ["nest-gateway"]})
    server = tcp_server(settings, "demo")
    assert server.admission is not None
    assert server.admission.allowed == {"nest-gateway", "demo"}
