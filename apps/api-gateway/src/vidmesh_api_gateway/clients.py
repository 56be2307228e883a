"""One typed method per remote pattern, each service behind a :class:`TcpClientPool`.

Requests are the contract models; answers are validated with them, so a service that answers
off-contract gives a 502 here instead of a confusing error deeper in a route.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from vidmesh.contracts import HEALTH, Health
from vidmesh.contracts import analytics as analytics_contract
from vidmesh.contracts import user as user_contract
from vidmesh.contracts import video as video_contract
from vidmesh.kit.tls import client_ssl
from vidmesh.transport import ClientOptions, Pattern, TcpClientPool

from vidmesh_api_gateway.errors import BadGateway
from vidmesh_api_gateway.settings import Settings, split_address

M = TypeVar("M", bound=BaseModel)

_VIDEOS = TypeAdapter(list[video_contract.Video])
_DOWNLOADS = TypeAdapter(list[analytics_contract.VideoDownloads])


def _parse(model: type[M], answer: Any, pattern: Pattern) -> M:
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise BadGateway(f"Unexpected answer to {pattern}") from error


def _parse_list(adapter: TypeAdapter[list[M]], answer: Any, pattern: Pattern) -> list[M]:
    try:
        return adapter.validate_python(answer)
    except ValidationError as error:
        raise BadGateway(f"Unexpected answer to {pattern}") from error


class ServiceClient:
    """A pool to one service, and the health pattern every service answers."""

    def __init__(self, pool: TcpClientPool) -> None:
        self.pool = pool

    async def health(self, timeout: float) -> Health:
        return _parse(Health, await self.pool.send(HEALTH, timeout=timeout), HEALTH)

    async def close(self) -> None:
        await self.pool.close()


class UserClient(ServiceClient):
    async def create(self, credentials: user_contract.Credentials) -> user_contract.UserId:
        pattern = user_contract.CREATE
        answer = await self.pool.send(pattern, credentials.to_wire())
        return _parse(user_contract.UserId, answer, pattern)

    async def validate(self, credentials: user_contract.Credentials) -> user_contract.UserId:
        pattern = user_contract.VALIDATE
        answer = await self.pool.send(pattern, credentials.to_wire())
        return _parse(user_contract.UserId, answer, pattern)

    async def find_one_by_email(self, email: str) -> user_contract.UserId:
        pattern = user_contract.FIND_ONE_BY_EMAIL
        return _parse(user_contract.UserId, await self.pool.send(pattern, email), pattern)

    async def find_one_by_id(self, user_id: str) -> user_contract.User:
        pattern = user_contract.FIND_ONE_BY_ID
        answer = await self.pool.send(pattern, user_contract.UserLookup(id=user_id).to_wire())
        return _parse(user_contract.User, answer, pattern)


class VideoClient(ServiceClient):
    async def find_one(self, video_id: str) -> video_contract.Video:
        pattern = video_contract.FIND_ONE
        answer = await self.pool.send(pattern, video_contract.VideoLookup(id=video_id).to_wire())
        return _parse(video_contract.Video, answer, pattern)

    async def find_many(self, video_ids: list[str]) -> list[video_contract.Video]:
        pattern = video_contract.FIND_MANY
        answer = await self.pool.send(pattern, video_contract.VideoBatch(ids=video_ids).to_wire())
        return _parse_list(_VIDEOS, answer, pattern)

    async def page(self, query: video_contract.PageQuery) -> video_contract.VideoPage:
        pattern = video_contract.LIST
        answer = await self.pool.send(pattern, query.to_wire())
        return _parse(video_contract.VideoPage, answer, pattern)

    async def grant_read(self, request: video_contract.ReadRequest) -> video_contract.ReadGrant:
        """The video and a URL to read it from the store; a whole read counts a download."""
        pattern = video_contract.GRANT_READ
        answer = await self.pool.send(pattern, request.to_wire())
        return _parse(video_contract.ReadGrant, answer, pattern)

    async def upload_start(self, start: video_contract.UploadStart) -> video_contract.UploadGrant:
        pattern = video_contract.UPLOAD_START
        answer = await self.pool.send(pattern, start.to_wire())
        return _parse(video_contract.UploadGrant, answer, pattern)

    async def upload_part(self, request: video_contract.PartRequest) -> video_contract.PartUrl:
        pattern = video_contract.UPLOAD_PART
        answer = await self.pool.send(pattern, request.to_wire())
        return _parse(video_contract.PartUrl, answer, pattern)

    async def upload_status(
        self, lookup: video_contract.UploadLookup
    ) -> video_contract.UploadStatus:
        pattern = video_contract.UPLOAD_STATUS
        answer = await self.pool.send(pattern, lookup.to_wire())
        return _parse(video_contract.UploadStatus, answer, pattern)

    async def upload_finish(self, finish: video_contract.UploadFinish) -> video_contract.Video:
        pattern = video_contract.UPLOAD_FINISH
        answer = await self.pool.send(pattern, finish.to_wire())
        return _parse(video_contract.Video, answer, pattern)

    async def upload_abort(self, lookup: video_contract.UploadLookup) -> None:
        await self.pool.send(video_contract.UPLOAD_ABORT, lookup.to_wire())


class AnalyticsClient(ServiceClient):
    async def top_videos(self, limit: int) -> list[analytics_contract.VideoDownloads]:
        pattern = analytics_contract.TOP_VIDEOS
        query = analytics_contract.TopVideosQuery(limit=limit)
        return _parse_list(_DOWNLOADS, await self.pool.send(pattern, query.to_wire()), pattern)

    async def video_stats(self, video_id: str) -> analytics_contract.VideoDownloads:
        pattern = analytics_contract.VIDEO_STATS
        query = analytics_contract.VideoStatsQuery(id=video_id)
        answer = await self.pool.send(pattern, query.to_wire())
        return _parse(analytics_contract.VideoDownloads, answer, pattern)


@dataclass(frozen=True, slots=True)
class Clients:
    """The three services the gateway calls. Pools connect on first use, so the gateway can
    start before the services (``/readyz`` says when they are there)."""

    user: UserClient
    video: VideoClient
    analytics: AnalyticsClient

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        options = ClientOptions(request_timeout=settings.request_timeout, connect_attempts=2)

        context = client_ssl(settings)  # the gateway's certificate, presented to each service

        def pool(address: str, service: str) -> TcpClientPool:
            host, port = split_address(address)
            return TcpClientPool(
                host,
                port,
                size=settings.client_pool_size,
                options=options,
                ssl_context=context,
                server_hostname=service,  # verified by its name, whatever the address says
            )

        return cls(
            user=UserClient(pool(settings.user_address, "user")),
            video=VideoClient(pool(settings.video_address, "video")),
            analytics=AnalyticsClient(pool(settings.analytics_address, "analytics")),
        )

    async def close(self) -> None:
        await asyncio.gather(self.user.close(), self.video.close(), self.analytics.close())
