"""``/api/videos``: streamed upload, the public catalogue, downloads streamed from the object
store (ranged), and playback URLs. Direct uploads are ``routes/uploads.py``'s."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import anyio
import structlog
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from vidmesh.contracts import video as contract
from vidmesh.transport import RemoteError

from vidmesh_api_gateway.dependencies import (
    CurrentUserDep,
    SettingsDep,
    StoreDep,
    UploadSlotDep,
    VideoClientDep,
)
from vidmesh_api_gateway.downloads import (
    content_disposition,
    content_range,
    etag_matches,
    parse_range,
    quoted_etag,
    range_applies,
)
from vidmesh_api_gateway.errors import PayloadTooLarge, RangeNotSatisfiable
from vidmesh_api_gateway.schemas import (
    PlaybackUrl,
    VideoCreated,
    VideoMetadata,
    VideoPageResponse,
    error_responses,
)
from vidmesh_api_gateway.uploads import (
    FILE_FIELD,
    MULTIPART_OVERHEAD,
    TITLE_FIELD,
    UploadStream,
    multipart_boundary,
)

logger = structlog.get_logger("vidmesh_api_gateway.routes.videos")

router = APIRouter(prefix="/api/videos", tags=["Video"])

MAX_PAGE: Final = 1_000_000

# The body is parsed by hand (streamed), so FastAPI cannot infer it: document it for /docs.
UPLOAD_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD, TITLE_FIELD],
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "An MP4 or WebM video (checked from its bytes)",
                        },
                        TITLE_FIELD: {
                            "type": "string",
                            "minLength": contract.MIN_TITLE_LENGTH,
                            "maxLength": contract.MAX_TITLE_LENGTH,
                        },
                    },
                }
            }
        },
    }
}
VIDEO_CONTENT: Final[dict[str, Any]] = {"video/mp4": {}, "video/webm": {}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    responses=error_responses(400, 401, 413, 415, 503),
)
async def upload_video(
    request: Request,
    user: CurrentUserDep,
    _slot: UploadSlotDep,
    videos: VideoClientDep,
    store: StoreDep,
    settings: SettingsDep,
) -> VideoCreated:
    """Upload a video (multipart ``video`` + ``title``), streamed into the object store."""
    boundary = multipart_boundary(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The video is larger than {settings.max_upload_bytes} bytes")
    upload = UploadStream(
        videos, store, user_id=user.id, boundary=boundary, max_bytes=settings.max_upload_bytes
    )
    try:
        async for data in request.stream():
            await upload.feed(data)
        video = await upload.finish()
    except BaseException:
        with anyio.CancelScope(shield=True):  # a client that hung up still gets it dropped
            await upload.abort()
        raise
    logger.info("video_uploaded", video_id=video.id, size=video.size, user_id=user.id)
    return VideoCreated(id=video.id, title=video.title)


@router.get("", responses=error_responses(400))
async def list_videos(
    videos: VideoClientDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=contract.MAX_PAGE_SIZE)] = 20,
) -> VideoPageResponse:
    """The catalogue, newest first (public)."""
    found = await videos.page(contract.PageQuery(page=page, size=size))
    return VideoPageResponse(
        items=[_metadata(video) for video in found.items],
        page=found.page,
        size=found.size,
        total=found.total,
    )


@router.get("/{video_id}", responses=error_responses(400, 404))
async def get_video(video_id: uuid.UUID, videos: VideoClientDep) -> VideoMetadata:
    """One video's metadata (public)."""
    return _metadata(await videos.find_one(str(video_id)))


@router.get(
    "/{video_id}/download",
    response_class=StreamingResponse,
    responses={
        200: {"content": VIDEO_CONTENT, "description": "The whole video"},
        206: {"content": VIDEO_CONTENT, "description": "The requested byte range"},
        304: {"description": "Not modified (If-None-Match)"},
        **error_responses(400, 401, 404, 416, 503),
    },
)
async def download_video(
    video_id: uuid.UUID,
    user: CurrentUserDep,
    videos: VideoClientDep,
    store: StoreDep,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    if_none_match: Annotated[str | None, Header(alias="if-none-match")] = None,
    if_range: Annotated[str | None, Header(alias="if-range")] = None,
) -> Response:
    """The video's bytes, streamed from the store; one ``Range: bytes=...`` gives 206. A 200,
    or a 206 of the whole video, counts as a download; a part of it does not."""
    wanted = parse_range(range_header)
    if if_none_match is not None or (if_range is not None and wanted is not None):
        # Conditional requests (revalidation, resumes) are rare: they ask for the validator
        # first, so that a 304 or an outdated range never counts a download.
        current = await videos.find_one(str(video_id))
        if etag_matches(if_none_match, current.etag):
            headers = {"ETag": quoted_etag(current.etag), "Accept-Ranges": "bytes"}
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        if not range_applies(if_range, current.etag):
            wanted = None
    request = contract.ReadRequest(id=str(video_id), user_id=user.id, range=wanted)
    try:
        grant = await videos.grant_read(request)
    except RemoteError as error:
        if error.status_code == status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE:
            raise RangeNotSatisfiable((await videos.find_one(str(video_id))).size) from None
        raise
    video = grant.video
    headers = {
        "ETag": quoted_etag(video.etag),
        "Accept-Ranges": "bytes",
        "Content-Type": video.mimetype,
        "Content-Length": str(grant.end - grant.start),
        "Content-Disposition": content_disposition(video.filename),
    }
    code = status.HTTP_200_OK
    if wanted is not None:
        code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = content_range(grant.start, grant.end, video.size)
    body = store.read(grant.url, start=grant.start, end=grant.end, size=video.size)
    # The first piece is read before the status line is sent, so a store that fails is a
    # proper error answer rather than a cut-off 200.
    first = await anext(body, b"")
    return StreamingResponse(_prepend(first, body), status_code=code, headers=headers)


@router.get("/{video_id}/url", responses=error_responses(400, 401, 404, 503))
async def playback_url(
    video_id: uuid.UUID, user: CurrentUserDep, videos: VideoClientDep
) -> PlaybackUrl:
    """A short-lived URL to play the video from (``<video src>``, a CDN): no token needed to
    fetch it, Range works, served inline with the video's type. Counts one download."""
    request = contract.ReadRequest(id=str(video_id), user_id=user.id, playback=True)
    grant = await videos.grant_read(request)
    return PlaybackUrl(url=grant.url, expires_at=grant.expires_at)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in rest:
        yield piece


def _metadata(video: contract.Video) -> VideoMetadata:
    return VideoMetadata(
        id=video.id,
        title=video.title,
        mimetype=video.mimetype,
        size=video.size,
        user_id=video.user_id,
        created_at=video.created_at,
    )
