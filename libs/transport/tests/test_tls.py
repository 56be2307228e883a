"""TLS and mutual TLS over real sockets, with certificates made by trustme for each test."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from vidmesh.transport import ClientOptions, ServiceUnavailable, TcpClient, tls
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
