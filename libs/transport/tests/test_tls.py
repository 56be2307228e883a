"""TLS and mutual TLS over real sockets, with certificates made by trustme for each test."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from structlog.testing import capture_logs
from vidmesh.transport import ClientOptions, ServiceUnavailable, TcpClient, TcpServer, identity, tls
from vidmesh.transport.identity import Admission, peer_names
from vidmesh.transport.testing import ServedTcp, echo_router, serve_tcp

ONE_TRY = ClientOptions(connect_attempts=1, connect_timeout=2.0)


@dataclass
class Pki:
    ca: Path
    server: Path
    client: Path
    stranger_ca: Path
    stranger: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger_ca = trustme.CA(), trustme.CA()
    paths = Pki(
        ca=folder / "ca.pem",
        server=folder / "server.pem",
        client=folder / "client.pem",
        stranger_ca=folder / "stranger-ca.pem",
        stranger=folder / "stranger.pem",
    )
    ca.cert_pem.write_to_path(paths.ca)
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        paths.server
    )
    ca.issue_cert("client.vidmesh.test").private_key_and_cert_chain_pem.write_to_path(paths.client)
    stranger_ca.cert_pem.write_to_path(paths.stranger_ca)
    stranger_ca.issue_cert("client.vidmesh.test").private_key_and_cert_chain_pem.write_to_path(
        paths.stranger
    )
    return paths


def client_of(
    served: ServedTcp, context: ssl.SSLContext | None, hostname: str = "localhost"
) -> TcpClient:
    return TcpClient(
        "127.0.0.1",
        served.port,
        options=ONE_TRY,
        ssl_context=context,
        server_hostname=hostname if context else None,
    )


async def refused(client: TcpClient) -> ServiceUnavailable:
    """The call fails to reach the service (ConnectionLost is a ServiceUnavailable)."""
    async with client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.send("echo", "let me in", timeout=5)
    return caught.value


async def test_a_tls_client_that_trusts_the_ca_is_served(pki: Pki) -> None:
    server_ssl = tls.server_context(pki.server)
    client_ssl = tls.client_context(pki.ca)
    async with serve_tcp(echo_router(), server_ssl=server_ssl, client_ssl=client_ssl) as served:
        assert await served.client.send("echo", {"over": "tls"}) == {"over": "tls"}
        answers = await asyncio.gather(*(served.client.send("echo", i) for i in range(50)))
        assert answers == list(range(50))


async def test_a_client_that_does_not_trust_the_servers_ca_is_refused(pki: Pki) -> None:
    async with serve_tcp(echo_router(), server_ssl=tls.server_context(pki.server)) as served:
        error = await refused(client_of(served, tls.client_context(pki.stranger_ca)))
        assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
        good = client_of(served, tls.client_context(pki.ca))
        async with good:
            assert await good.send("echo", "still served") == "still served"


async def test_a_client_expecting_another_hostname_is_refused(pki: Pki) -> None:
    async with serve_tcp(echo_router(), server_ssl=tls.server_context(pki.server)) as served:
        error = await refused(client_of(served, tls.client_context(pki.ca), "api.example.com"))
        assert isinstance(error.__cause__, ssl.SSLCertVerificationError)


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(pki: Pki) -> None:
    async with serve_tcp(echo_router(), server_ssl=tls.server_context(pki.server)) as served:
        await refused(client_of(served, None))
        assert await wait_for(lambda: not served.server.connections)


async def test_mutual_tls_serves_a_client_with_a_certificate_signed_by_the_ca(pki: Pki) -> None:
    server_ssl = tls.server_context(pki.server, client_ca=pki.ca)
    client_ssl = tls.client_context(pki.ca, certfile=pki.client)
    async with serve_tcp(echo_router(), server_ssl=server_ssl, client_ssl=client_ssl) as served:
        assert await served.client.send("echo", "mutual") == "mutual"


async def test_mutual_tls_refuses_a_client_without_a_certificate(pki: Pki) -> None:
    server_ssl = tls.server_context(pki.server, client_ca=pki.ca)
    client_ssl = tls.client_context(pki.ca, certfile=pki.client)
    async with serve_tcp(echo_router(), server_ssl=server_ssl, client_ssl=client_ssl) as served:
        await refused(client_of(served, tls.client_context(pki.ca)))
        assert await served.client.send("echo", "the one with a cert") == "the one with a cert"


async def test_mutual_tls_refuses_a_certificate_signed_by_another_ca(pki: Pki) -> None:
    server_ssl = tls.server_context(pki.server, client_ca=pki.ca)
    client_ssl = tls.client_context(pki.ca, certfile=pki.client)
    async with serve_tcp(echo_router(), server_ssl=server_ssl, client_ssl=client_ssl) as served:
        await refused(client_of(served, tls.client_context(pki.ca, certfile=pki.stranger)))
        assert await served.client.send("echo", "the one with a cert") == "the one with a cert"


async def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                break
            await asyncio.sleep(0.005)
    return True


# -- service identity: which callers a server admits ------------------------------------------


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The server's certificate and one per caller, named after each (``api-gateway``...)."""
    folder = tmp_path_factory.mktemp("services")
    ca = trustme.CA()
    paths = {"ca": folder / "ca.pem"}
    ca.cert_pem.write_to_path(paths["ca"])
    for name in ("user", "api-gateway", "video"):
        paths[name] = folder / f"{name}.pem"
        ca.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(paths[name])
    return paths


def caller(services: dict[str, Path], name: str | None) -> ssl.SSLContext:
    """A client context presenting ``name``'s certificate (None: no certificate)."""
    certfile = None if name is None else services[name]
    return tls.client_context(services["ca"], certfile=certfile)


async def test_an_admitted_callers_certificate_is_served(services: dict[str, Path]) -> None:
    server_ssl = tls.server_context(services["user"], client_ca=services["ca"])
    async with serve_tcp(
        echo_router(), server_ssl=server_ssl, allowed_peers=["api-gateway"]
    ) as served:
        gateway = client_of(served, caller(services, "api-gateway"), hostname="user")
        async with gateway:
            assert await gateway.send("echo", "gateway") == "gateway"


async def test_a_caller_not_admitted_is_closed_before_any_frame_and_audited(
    services: dict[str, Path],
) -> None:
    server_ssl = tls.server_context(services["user"], client_ca=services["ca"])
    async with serve_tcp(
        echo_router(), server_ssl=server_ssl, allowed_peers=["api-gateway"]
    ) as served:
        stranger = client_of(served, caller(services, "video"), hostname="user")
        with capture_logs() as captured:
            await refused(stranger)
            assert await wait_for(lambda: not served.server.connections)
    [event] = [e for e in captured if e["event"] == "service_connection_refused"]
    assert event["identity"] == ["video"]
    assert event["peer"].startswith("127.0.0.1:")
    assert event["log_level"] == "warning"
    assert identity.audit._logger_factory_args == ("vidmesh.audit",)


def test_allowed_peers_need_a_server_that_requires_client_certificates(
    services: dict[str, Path],
) -> None:
    with pytest.raises(ValueError, match="client certificates"):
        TcpServer(ssl_context=tls.server_context(services["user"]), allowed_peers=["x"])
    with pytest.raises(ValueError, match="client certificates"):
        TcpServer(allowed_peers=["x"])


def test_peer_names_are_the_dns_names_else_the_common_name() -> None:
    subject = ((("organizationName", "vidmesh"),), (("commonName", "api-gateway"),))
    both = {"subject": subject, "subjectAltName": (("DNS", "video"), ("IP Address", "10.0.0.1"))}
    assert peer_names(both) == ("video",)
    assert peer_names({"subject": subject}) == ("api-gateway",)
    assert peer_names({}) == ()
    assert peer_names(None) == ()


def test_admission_needs_one_allowed_name() -> None:
    admission = Admission(["api-gateway"])
    assert admission.admits(["api-gateway", "api-gateway.vidmesh.svc"])
    assert not admission.admits(["video"])
    assert not admission.admits([])
    assert not Admission([]).admits(["api-gateway"])
