"""The composition root: settings -> database -> repository -> handlers and consumer ->
Microservice (TCP for queries and Kafka for events, one process)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import structlog
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

logger = structlog.get_logger("vidmesh_analytics")


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

    retention = timedelta(days=settings.inbox_retention_days)

    @contextlib.asynccontextmanager
    async def lifespan(service: Microservice) -> AsyncIterator[None]:
        purger = asyncio.create_task(
            purge_forever(database, downloads, retention, settings.inbox_purge_interval),
            name="inbox-purger",
        )
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await database.close()

    return Microservice(
        SERVICE,
        router,
        transports=[tcp_server(settings, SERVICE), kafka_transport(settings)],
        lifespan=lifespan,
        drain_timeout=settings.drain_timeout,
    )


def kafka_transport(settings: Settings) -> KafkaTransport:
    """The consumer of ``video_downloaded``. An event that keeps failing is retried for
    ``event_retry_timeout`` (minutes) before the dead-letter topic, from where it can be
    replayed: long enough to wait out a database restart, short enough that one poison event
    does not hold its partition (and every count behind it) for long. Malformed events go to
    the dead-letter topic at once."""
    retry = RetryPolicy(
        max_attempts=settings.event_retry_attempts,
        max_backoff=settings.event_retry_max_backoff,
        max_elapsed=settings.event_retry_timeout,
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
        security=settings.kafka_security,
    )


async def purge_forever(
    database: Database, downloads: DownloadRepository, retention: timedelta, interval: float
) -> None:
    """Every ``interval`` seconds (the first time at start), forget the ids of the events
    counted longer than ``retention`` ago; the counts themselves stay."""
    while True:
        try:
            async with database.transaction() as session:
                before = datetime.now(UTC) - retention
                purged = await downloads.purge_processed(session, before)
            if purged:
                logger.info("inbox_purged", rows=purged, before=before.isoformat())
        except Exception as error:  # a background loop's boundary: log and try next time
            logger.warning("inbox_purge_failed", error=repr(error))
        await asyncio.sleep(interval)
