"""Kafka over TLS reaches every client: finding "Kafka has no TLS or SASL settings".

Tansu 0.6.0 (the broker we run) cannot be given its certificate and key together (``--cert``
and ``--key`` share a clap group), so TLS ends in a small asyncio proxy in front of it, which
also asks for a client certificate (mutual TLS, as some managed Kafkas do), and tansu
advertises the proxy's address: every connection aiokafka opens (bootstrap, then the advertised
broker) is TLS to the proxy. SASL is not proven here: tansu's ``--authentication`` offers SCRAM
only, and a SCRAM user cannot be made to last (``tansu user create`` needs an authenticated
connection once authentication is on, and a user made before is gone after the restart, even
on S3 storage); the settings -> aiokafka mapping of PLAIN and SCRAM is tested beside the code
(libs/transport/tests/test_kafka_security.py, libs/kit/tests/test_settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trustme
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from vidmesh.devstack.broker import TansuBroker
from vidmesh.devstack.samples import sample_mp4
from vidmesh.transport import Microservice, Router
from vidmesh.transport.kafka import KafkaClient, KafkaSecurity, KafkaTransport, create_topics
from vidmesh.transport.tls import server_context

from tests.e2e.fixtures_api import download, sign_up, upload_video, wait_for_count
from tests.e2e.fixtures_systems import own_system

LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class TlsProxy:
    """Ends TLS on a port of its own and pipes the bytes to ``upstream``, on a loop in a thread
    (the whole-system test is synchronous). ``sessions`` counts completed TLS handshakes."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.upstream: tuple[str, int] | None = None
        self.sessions = 0
        self.versions: set[str] = set()
        self._pipes: set[asyncio.Future[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._pipe, LOOPBACK, 0, ssl=context))
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self.versions.add(writer.get_extra_info("ssl_object").version())
        assert self.upstream is not None
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        pipes = asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        self._pipes.add(pipes)
        try:
            await pipes
        finally:
            self._pipes.discard(pipes)

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            for pipes in list(self._pipes):
                pipes.cancel()
            await asyncio.sleep(0.1)

        self._call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(Exception):
        sink.close()


@dataclass
class SecureKafka:
    bootstrap: str
    """The proxy: mutual TLS in front of tansu."""
    ca: Path
    client: Path
    """A client certificate and its key, in one PEM file."""
    stranger_ca: Path
    proxy: TlsProxy

    def security(self, *, ca: Path | None = None, client: bool = True) -> KafkaSecurity:
        return KafkaSecurity(
            security_protocol="SSL",
            ssl_cafile=ca or self.ca,
            ssl_certfile=self.client if client else None,
        )


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    folder = tmp_path_factory.mktemp("kafka-pki")
    ca, stranger = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(folder / "ca.pem")
    stranger.cert_pem.write_to_path(folder / "stranger-ca.pem")
    pem = ca.issue_cert(LOOPBACK, "localhost").private_key_and_cert_chain_pem
    pem.write_to_path(folder / "broker.pem")
    ca.issue_cert("vidmesh-client").private_key_and_cert_chain_pem.write_to_path(
        folder / "client.pem"
    )
    proxy = TlsProxy(server_context(folder / "broker.pem", client_ca=folder / "ca.pem"))
    paths = (folder / "ca.pem", folder / "client.pem", folder / "stranger-ca.pem")
    try:
        with TansuBroker(advertised=proxy.address) as broker:
            proxy.upstream = (LOOPBACK, broker.port)
            yield SecureKafka(proxy.address, *paths, proxy)
    finally:
        proxy.close()


async def _refused(bootstrap: str, security: KafkaSecurity | None) -> bool:
    kwargs = {} if security is None else security.client_kwargs()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000, **kwargs)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except (KafkaConnectionError, TimeoutError):
        return True
    finally:
        await producer.stop()
    return False


async def test_a_plaintext_client_is_refused(secure_kafka: SecureKafka) -> None:
    assert await _refused(secure_kafka.bootstrap, None)


async def test_a_broker_certificate_from_another_ca_is_refused(secure_kafka: SecureKafka) -> None:
    assert await _refused(
        secure_kafka.bootstrap, secure_kafka.security(ca=secure_kafka.stranger_ca)
    )


async def test_a_client_without_its_certificate_is_refused(secure_kafka: SecureKafka) -> None:
    assert await _refused(secure_kafka.bootstrap, secure_kafka.security(client=False))


async def test_events_and_requests_flow_over_mutual_tls(secure_kafka: SecureKafka) -> None:
    """The transport's producer and consumer, the client's producer and reply listener and the
    admin client all speak TLS, with the client certificate."""
    security = secure_kafka.security()
    topics = ["secure.event", "secure.ask", "secure.ask.reply"]
    await create_topics(secure_kafka.bootstrap, topics, exist_ok=True, security=security)
    seen: asyncio.Queue[str] = asyncio.Queue()
    router = Router()

    @router.event("secure.event")
    async def on_event(data: str) -> None:
        await seen.put(data)

    @router.message("secure.ask")
    async def ask(data: str) -> str:
        return data.upper()

    transport = KafkaTransport(secure_kafka.bootstrap, group_id="secure-group", security=security)
    before = secure_kafka.proxy.sessions
    async with Microservice("secure", router, transports=[transport]):
        await asyncio.wait_for(transport.wait_assigned(), 60)
        async with KafkaClient(
            secure_kafka.bootstrap, client_id="secure-client", security=security
        ) as client:
            await client.emit("secure.event", "over tls")
            assert await asyncio.wait_for(seen.get(), 30) == "over tls"
            assert await client.send("secure.ask", "hello", timeout=30) == "HELLO"
    assert secure_kafka.proxy.sessions - before >= 4
    assert secure_kafka.proxy.versions <= {"TLSv1.2", "TLSv1.3"}


@pytest.mark.timeout(400)
def test_the_platform_counts_downloads_over_mutual_tls(
    secure_kafka: SecureKafka, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The video service's outbox relay and analytics' consumer, set only through their
    ``VIDMESH_<SERVICE>_KAFKA_*`` settings."""
    env: dict[str, str] = {}
    for prefix in ("VIDMESH_VIDEO_", "VIDMESH_ANALYTICS_"):
        env |= {
            f"{prefix}KAFKA_SECURITY_PROTOCOL": "SSL",
            f"{prefix}KAFKA_SSL_CAFILE": str(secure_kafka.ca),
            f"{prefix}KAFKA_SSL_CERTFILE": str(secure_kafka.client),
        }
    before = secure_kafka.proxy.sessions
    with (
        own_system(
            postgres_url,
            tmp_path_factory,
            "kafka_tls",
            extra_env=env,
            kafka_bootstrap=secure_kafka.bootstrap,
        ) as system,
        httpx.Client(base_url=system.gateway_url, timeout=30.0) as gateway,
    ):
        account = sign_up(gateway)
        video_id = upload_video(gateway, account, sample_mp4(32 * 1024, seed=41), "Secure")
        assert download(gateway, account, video_id) == 200
        wait_for_count(gateway, video_id, 1, timeout=90)
    assert secure_kafka.proxy.sessions > before
