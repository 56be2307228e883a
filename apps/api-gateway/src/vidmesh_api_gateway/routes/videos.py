"""``/api/videos``: streamed upload, the public catalogue, and streamed, ranged downloads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import anyio
import structlog
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from vidmesh.contracts import video as contract

from vidmesh_api_gateway.dependencies import CurrentUserDep, SettingsDep, VideoClientDep
from vidmesh_api_gateway.downloads import (
    ByteRange,
    content_disposition,
    etag_matches,
    parse_range,
    quoted_etag,
    range_applies,
    read_body,
)
from vidmesh_api_gateway.errors import PayloadTooLarge
from vidmesh_api_gateway.schemas import (
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
    responses=error_responses(400, 401, 413, 415),
)
async def upload_video(
    request: Request, user: CurrentUserDep, videos: VideoClientDep, settings: SettingsDep
) -> VideoCreated:
    """Upload a video (multipart ``video`` + ``title``), streamed to the video service."""
    boundary = multipart_boundary(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"The video is larger than {settings.max_upload_bytes} bytes")
    upload = UploadStream(
        videos, user_id=user.id, boundary=boundary, max_bytes=settings.max_upload_bytes
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
        **error_responses(400, 401, 404, 416),
    },
)
async def download_video(
    video_id: uuid.UUID,
    user: CurrentUserDep,
    videos: VideoClientDep,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    if_none_match: Annotated[str | None, Header(alias="if-none-match")] = None,
    if_range: Annotated[str | None, Header(alias="if-range")] = None,
) -> Response:
    """The video's bytes, streamed; one ``Range: bytes=...`` gives 206. A 200, or a 206 from
    byte 0, counts as a download."""
    video = await videos.find_one(str(video_id))
    headers = {"ETag": quoted_etag(video.etag), "Accept-Ranges": "bytes"}
    if etag_matches(if_none_match, video.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    span = parse_range(range_header, video.size) if range_applies(if_range, video.etag) else None
    if span is not None:
        headers["Content-Range"] = span.content_range(video.size)
    code = status.HTTP_206_PARTIAL_CONTENT if span is not None else status.HTTP_200_OK
    span = span or ByteRange(0, video.size)
    headers |= {
        "Content-Type": video.mimetype,
        "Content-Length": str(span.length),
        "Content-Disposition": content_disposition(video.filename),
    }
    body = read_body(videos, video.id, span, user_id=user.id)
    # The first piece is read before the status line is sent, so a failing read is a proper
    # error answer rather than a cut-off 200.
    first = await anext(body, b"")
    return StreamingResponse(_prepend(first, body), status_code=code, headers=headers)


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
