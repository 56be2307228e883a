"""Composition root: settings -> database, token codec, sessions, clients -> FastAPI app ->
a Microservice serving it over HTTP (AsgiTransport)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import anyio
import structlog
from fastapi import FastAPI
from vidmesh.kit.db import Database
from vidmesh.transport import Microservice, Router
from vidmesh.transport.asgi import AsgiTransport
from vidmesh.transport.http_limits import HttpLimits

from vidmesh_api_gateway.body_limits import BodyLimits
from vidmesh_api_gateway.clients import Clients
from vidmesh_api_gateway.dependencies import Gateway
from vidmesh_api_gateway.errors import install_error_handlers
from vidmesh_api_gateway.purge import purge_forever
from vidmesh_api_gateway.ratelimits import RateLimits
from vidmesh_api_gateway.revocation import SessionCheck
from vidmesh_api_gateway.routes import analytics, auth, health, uploads, videos
from vidmesh_api_gateway.security import RefreshSessions, TokenCodec
from vidmesh_api_gateway.settings import Settings
from vidmesh_api_gateway.store import StoreClient

SERVICE_NAME: Final = "api-gateway"
TITLE: Final = "vidmesh API"

logger = structlog.get_logger("vidmesh_api_gateway")


def build_gateway(settings: Settings) -> Gateway:
    """The parts the routes use; nothing connects until first used."""
    database = Database(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        application_name=SERVICE_NAME,
    )
    codec = TokenCodec(
        access_secret=settings.jwt_access_secret.get_secret_value(),
        refresh_secret=settings.jwt_refresh_secret.get_secret_value(),
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
    )
    check = SessionCheck(database, cache_seconds=settings.session_check_seconds)
    return Gateway(
        settings=settings,
        database=database,
        codec=codec,
        sessions=RefreshSessions(database, codec, check),
        clients=Clients.from_settings(settings),
        store=StoreClient(connections=settings.store_connections, timeout=settings.store_timeout),
        check=check,
        limits=RateLimits.from_settings(settings),
        upload_slots=anyio.CapacityLimiter(settings.max_concurrent_uploads),
    )


def create_app(gateway: Gateway) -> FastAPI:
    """The HTTP API over ``gateway``, its OpenAPI docs at ``/docs``."""
    app = FastAPI(
        title=TITLE,
        version="0.1.0",
        description="Sign up, upload, stream and download videos; see what is downloaded most.",
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    settings = gateway.settings
    app.add_middleware(
        BodyLimits, auth_bytes=settings.max_auth_body_bytes, other_bytes=settings.max_body_bytes
    )
    for module in (auth, uploads, videos, analytics, health):
        app.include_router(module.router)
    return app


def http_limits(settings: Settings) -> HttpLimits:
    """The HTTP server's own limits (heads, deadlines, lingering close) from the settings."""
    return HttpLimits(
        max_head_bytes=settings.max_header_bytes,
        head_timeout=settings.header_timeout,
        body_idle_timeout=settings.body_idle_timeout,
        linger_timeout=settings.linger_timeout,
        linger_bytes=settings.linger_bytes,
        send_idle_timeout=settings.send_idle_timeout,
    )


def build_service(settings: Settings) -> Microservice:
    """The gateway as a Microservice: HTTP on ``settings.host:port``, closed resources on stop."""
    gateway = build_gateway(settings)
    transport = AsgiTransport(
        create_app(gateway),
        settings.host,
        settings.port,
        limits=http_limits(settings),
        access_log=settings.access_log,
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_timeout,
        # X-Forwarded-For only from the proxies named; by default from none (uvicorn's own
        # default trusts 127.0.0.1, so any local process could pick its client address)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(service: Microservice) -> AsyncIterator[None]:
        logger.info(
            "gateway_starting",
            user=settings.user_address,
            video=settings.video_address,
            analytics=settings.analytics_address,
        )
        purge = asyncio.create_task(
            purge_forever(gateway.database, settings.refresh_token_purge_interval)
        )
        try:
            yield
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            gateway.limits.close()
            await gateway.clients.close()
            await gateway.store.close()
            await gateway.database.close()

    return Microservice(
        SERVICE_NAME,
        Router(),  # the gateway answers HTTP only; it serves no TCP pattern
        transports=[transport],
        lifespan=lifespan,
        drain_timeout=settings.drain_timeout,
    )
