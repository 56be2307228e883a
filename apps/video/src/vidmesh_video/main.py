"""The composition root: settings -> database, object store -> repository, relay -> handlers
and uploads -> Microservice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from vidmesh.kit.db import Database
from vidmesh.kit.health import broker_reachable, health_router
from vidmesh.kit.relay import OutboxRelay
from vidmesh.kit.settings import SERVICE_FRAME_LENGTH
from vidmesh.kit.tls import tcp_server
from vidmesh.transport import Microservice, ServerOptions

from vidmesh_video.handlers import VideoHandlers, build_router
from vidmesh_video.models import Outbox
from vidmesh_video.objectstore import ObjectStore
from vidmesh_video.repository import VideoRepository
from vidmesh_video.settings import MiB, Settings
from vidmesh_video.uploads import Uploads

SERVICE = "video"

logger = structlog.get_logger("vidmesh_video")


def server_options(settings: Settings) -> ServerOptions:
    """With the tutorial's Buffer patterns on, frames big enough for their upload (a byte is up
    to 4 characters of JSON); off, the small default every other service has."""
    if not settings.buffer_patterns:
        return settings.server_options()
    frame = max(SERVICE_FRAME_LENGTH, 4 * settings.max_buffer_bytes + MiB)
    return settings.server_options(max_frame_length=frame)


def build_service(settings: Settings) -> Microservice:
    """The video service over TCP with its outbox relay, ready to ``run()`` (or start in a
    test)."""
    url = settings.database_url.get_secret_value()
    # No overflow: every download and chunk queries here, and connections opened past the pool
    # under load and closed when returned cost a connection setup (and re-prepared statements)
    # each. Calls past the pool wait for a connection; no handler holds two at once.
    database = Database(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        application_name=f"vidmesh-{SERVICE}",
    )
    # The relay's own connection, so events never wait behind calls for one of the pool's.
    relay_database = Database(
        url, pool_size=1, max_overflow=0, application_name=f"vidmesh-{SERVICE}-relay"
    )
    relay = OutboxRelay(
        relay_database,
        Outbox,
        settings.kafka_bootstrap,
        retention=timedelta(days=settings.outbox_retention_days),
        client_id=f"vidmesh-{SERVICE}",
        security=settings.kafka_security,
    )
    store = ObjectStore(settings)
    videos = VideoRepository()
    handlers = VideoHandlers(
        database,
        videos,
        store,
        max_buffer_bytes=settings.max_buffer_bytes,
        read_url_ttl=timedelta(seconds=settings.read_url_ttl),
        playback_url_ttl=timedelta(seconds=settings.playback_url_ttl),
        on_event=relay.wake,
    )
    uploads = Uploads(
        database,
        videos,
        store,
        max_upload_bytes=settings.max_upload_bytes,
        part_size=settings.s3_part_size,
        url_ttl=timedelta(seconds=settings.upload_url_ttl),
    )
    router = build_router(handlers, uploads, buffer_patterns=settings.buffer_patterns)

    async def broker() -> bool:
        return await broker_reachable(settings.kafka_bootstrap)

    checks = {"database": database.ping, "broker": broker, "store": store.ping}
    router.include_router(health_router(SERVICE, checks))
    idle_for = timedelta(seconds=settings.upload_idle_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(service: Microservice) -> AsyncIterator[None]:
        async with store:
            await relay.start()
            sweeper = asyncio.create_task(
                _sweep_forever(uploads, idle_for, settings.upload_sweep_interval),
                name="upload-sweeper",
            )
            try:
                yield
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                await relay.stop()
                await relay_database.close()
                await database.close()

    return Microservice(
        SERVICE,
        router,
        transports=[tcp_server(settings, SERVICE, options=server_options(settings))],
        lifespan=lifespan,
        drain_timeout=settings.drain_timeout,
    )


async def _sweep_forever(uploads: Uploads, idle_for: timedelta, interval: float) -> None:
    while True:
        try:
            await uploads.sweep(idle_for)
        except Exception as error:  # a background loop's boundary: log and try next time
            logger.warning("upload_sweep_failed", error=repr(error))
        await asyncio.sleep(interval)
