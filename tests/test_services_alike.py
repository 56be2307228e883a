"""What every TCP service shares, checked once over all three: the health pattern with its
checks, and Nest's answer to a pattern it does not know (the gateway's own probes are in
tests/e2e/test_health.py; migrate and health as commands in tests/deploy/test_entrypoints.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from vidmesh.contracts import HEALTH
from vidmesh.devstack.s3 import ObjectStore
from vidmesh.transport import Microservice, RemoteError, TcpClient, TcpServer
from vidmesh.transport.errors import NO_MESSAGE_HANDLER
from vidmesh_analytics.main import build_service as build_analytics
from vidmesh_analytics.settings import Settings as AnalyticsSettings
from vidmesh_user.main import build_service as build_user
from vidmesh_user.settings import Settings as UserSettings
from vidmesh_video.main import build_service as build_video
from vidmesh_video.settings import Settings as VideoSettings
from vidmesh_video.upgrade import prepare_store

CHECKS = {
    "user": {"database"},
    "video": {"database", "broker", "store"},
    "analytics": {"database", "broker"},
}


async def _service(
    name: str, database_url: str, kafka_bootstrap: str, store: ObjectStore, bucket: str
) -> Microservice:
    common: dict[str, Any] = {
        "port": 0,
        "database_url": database_url,
        "drain_timeout": 5,
        "tls_enabled": False,
    }
    if name == "user":
        return build_user(UserSettings(**common))
    kafka: dict[str, Any] = {"kafka_bootstrap": kafka_bootstrap}
    if name == "video":
        settings = VideoSettings(
            **common,
            **kafka,
            s3_endpoint=store.endpoint,
            s3_region=store.region,
            s3_access_key_id=store.access_key_id,
            s3_secret_access_key=store.secret_access_key,
            s3_bucket=bucket,
        )
        await prepare_store(settings)  # the bucket, as `migrate` makes it
        return build_video(settings)
    fast_join = {"kafka_session_timeout_ms": 2000, "kafka_heartbeat_interval_ms": 250}
    return build_analytics(AnalyticsSettings(**common, **kafka, **fast_join))


@pytest.fixture(scope="session")
def database_urls(service_database: Callable[[str], str]) -> dict[str, str]:
    # A plain fixture: service_database runs its own event loop.
    return {name: service_database(f"vidmesh_{name}") for name in CHECKS}


@pytest.fixture(params=sorted(CHECKS))
async def client(
    request: pytest.FixtureRequest,
    database_urls: dict[str, str],
    kafka_bootstrap: str,
    object_store: ObjectStore,
    unique_bucket: str,
) -> Any:
    name: str = request.param
    service = await _service(
        name, database_urls[name], kafka_bootstrap, object_store, unique_bucket
    )
    async with service:
        port = next(t.port for t in service.transports if isinstance(t, TcpServer))
        async with TcpClient("127.0.0.1", port) as tcp:
            yield name, tcp


async def test_every_service_reports_its_health_and_checks(client: Any) -> None:
    name, tcp = cast(tuple[str, TcpClient], client)
    answer = await tcp.send(HEALTH)
    assert answer["service"] == name
    assert answer["ok"] is True
    assert set(answer["checks"]) == CHECKS[name]
    assert all(answer["checks"].values())


async def test_every_service_answers_an_unknown_pattern_as_nest_does(client: Any) -> None:
    _, tcp = cast(tuple[str, TcpClient], client)
    with pytest.raises(RemoteError) as caught:
        await tcp.send({"cmd": "noSuchPattern"}, {})
    assert caught.value.message == NO_MESSAGE_HANDLER
