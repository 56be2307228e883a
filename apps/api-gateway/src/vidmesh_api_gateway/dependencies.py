"""Every injected dependency, named once as an ``Annotated`` alias.

The composition root (main.py) puts one :class:`Gateway` on ``app.state``; these aliases hand
routes its parts, and turn a bearer token into the current user (or a 401, never a 500).
Each is ``async def`` though none awaits: FastAPI runs a plain ``def`` dependency in a worker
thread, a hop per dependency per request that cost more than the work itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, cast

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from vidmesh.kit.db import Database

from vidmesh_api_gateway.clients import AnalyticsClient, Clients, UserClient, VideoClient
from vidmesh_api_gateway.errors import TooManyUploads, Unauthorized
from vidmesh_api_gateway.ratelimits import RateLimits
from vidmesh_api_gateway.revocation import SessionCheck
from vidmesh_api_gateway.security import RefreshSessions, TokenCodec, TokenType
from vidmesh_api_gateway.settings import Settings
from vidmesh_api_gateway.store import StoreClient


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the routes use: settings, the database, the token codec and sessions, clients of
    the services and of the object store, the check of live sessions."""

    settings: Settings
    database: Database
    codec: TokenCodec
    sessions: RefreshSessions
    clients: Clients
    store: StoreClient
    check: SessionCheck
    limits: RateLimits
    upload_slots: anyio.CapacityLimiter
    """One per upload streamed through the gateway (``max_concurrent_uploads``)."""


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: str


async def get_gateway(request: Request) -> Gateway:
    return cast(Gateway, request.app.state.gateway)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_settings(gateway: GatewayDep) -> Settings:
    return gateway.settings


async def get_database(gateway: GatewayDep) -> Database:
    return gateway.database


async def get_sessions(gateway: GatewayDep) -> RefreshSessions:
    return gateway.sessions


async def get_limits(gateway: GatewayDep) -> RateLimits:
    return gateway.limits


async def get_client_address(request: Request) -> str:
    """The client's address: the peer, or the client a trusted proxy named (uvicorn resolves
    ``X-Forwarded-For`` only for the peers in ``trusted_proxies``)."""
    return request.client.host if request.client is not None else "unknown"


async def get_user_client(gateway: GatewayDep) -> UserClient:
    return gateway.clients.user


async def get_video_client(gateway: GatewayDep) -> VideoClient:
    return gateway.clients.video


async def get_analytics_client(gateway: GatewayDep) -> AnalyticsClient:
    return gateway.clients.analytics


async def get_store(gateway: GatewayDep) -> StoreClient:
    return gateway.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionsDep = Annotated[RefreshSessions, Depends(get_sessions)]
LimitsDep = Annotated[RateLimits, Depends(get_limits)]
ClientAddressDep = Annotated[str, Depends(get_client_address)]
UserClientDep = Annotated[UserClient, Depends(get_user_client)]
VideoClientDep = Annotated[VideoClient, Depends(get_video_client)]
AnalyticsClientDep = Annotated[AnalyticsClient, Depends(get_analytics_client)]
StoreDep = Annotated[StoreClient, Depends(get_store)]


async def upload_slot(gateway: GatewayDep) -> AsyncIterator[None]:
    """One of ``max_concurrent_uploads`` slots, held for the whole upload; none free: 503.

    Taken on behalf of a token, not the task: FastAPI may end a dependency in another task."""
    holder = object()
    try:
        gateway.upload_slots.acquire_on_behalf_of_nowait(holder)
    except anyio.WouldBlock:
        raise TooManyUploads() from None
    try:
        yield
    finally:
        gateway.upload_slots.release_on_behalf_of(holder)


UploadSlotDep = Annotated[None, Depends(upload_slot)]

# Two schemes, so /docs shows which token each route wants. auto_error=False: a missing or
# malformed header is our 401 in the one error shape, not FastAPI's.
_access_scheme = HTTPBearer(
    scheme_name="accessToken", description="An access token", auto_error=False
)
_refresh_scheme = HTTPBearer(
    scheme_name="refreshToken", description="A refresh token", auto_error=False
)


def _bearer(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("A bearer token is required")
    return credentials.credentials.strip()


async def get_refresh_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_refresh_scheme)],
) -> str:
    """The raw bearer refresh token (verified by :class:`RefreshSessions`)."""
    return _bearer(credentials)


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_scheme)],
    gateway: GatewayDep,
) -> CurrentUser:
    """The user of a valid access token whose session is live; a refresh token is refused."""
    claims = gateway.codec.verify(_bearer(credentials), TokenType.ACCESS)
    await gateway.check.ensure_live(claims.family)
    return CurrentUser(id=claims.sub)


RefreshTokenDep = Annotated[str, Depends(get_refresh_token)]
CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]
