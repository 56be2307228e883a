"""The composition root: settings -> database -> repository -> handlers and consumer ->
Microservice (TCP for queries and Kafka for events, one process)."""

from __future__ import annotations

import functools

from vidmesh.kit.db import Database
from vidmesh.kit.health import HealthCheck, broker_reachable, health_router
from vidmesh.kit.tls import tcp_server
from vidmesh.transport import Microservice
from vidmesh.transport.kafka import KafkaTransport, RetryPolicy

from vidmesh_analytics.consumers import DownloadConsumer, build_event_router
from vidmesh_analytics.handlers import AnalyticsHandlers, build_router
from vidmesh_analytics.repository import DownloadRepository
from vidmesh_analytics.settings import Settings

SERVICE = "analytics"


def build_service(settings: Settings) -> Microservice:
    """The analytics service over TCP and Kafka, ready to ``run()`` (or start in a test)."""
    database = Database(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        application_name=f"vidmesh-{SERVICE}",
    )
    downloads = DownloadRepository()
    router = build_router(AnalyticsHandlers(database, downloads))
    router.include_router(build_event_router(DownloadConsumer(database, downloads)))
    checks: dict[str, HealthCheck] = {
        "database": database.ping,
        "broker": functools.partial(broker_reachable, settings.kafka_bootstrap),
    }
    router.include_router(health_router(SERVICE, checks))

    return Microservice(
        SERVICE,
        router,
        transports=[tcp_server(settings, SERVICE), kafka_transport(settings)],
        lifespan=database.lifespan,
        drain_timeout=settings.drain_timeout,
    )


def kafka_transport(settings: Settings) -> KafkaTransport:
    """The consumer of ``video_downloaded``. An event that keeps failing is retried for about
    a day (``event_retry_attempts``) before the dead-letter topic: what fails here is the
    database, and an outage should stall counting, not drop counts. Malformed events go to
    the dead-letter topic at once."""
    retry = RetryPolicy(
        max_attempts=settings.event_retry_attempts,
        max_backoff=settings.event_retry_max_backoff,
    )
    return KafkaTransport(
        settings.kafka_bootstrap,
        group_id=settings.kafka_group_id,
        client_id=f"vidmesh-{SERVICE}",
        retry=retry,
        consumer_config={
            "session_timeout_ms": settings.kafka_session_timeout_ms,
            "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
            "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        },
        drain_timeout=settings.drain_timeout,
    )
