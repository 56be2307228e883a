"""``/api/videos/uploads``: direct uploads for large files and browsers.

The client asks for an upload (file name and size), PUTs each part straight to the object
store with the URLs it gets, can ask which parts arrived (to resume after a cut connection or a
page reload, with fresh URLs for the rest), then completes it with a title; or aborts it. Only
the user who started an upload sees, completes or aborts it (anyone else gets 404).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from vidmesh.contracts import video as contract

from vidmesh_api_gateway.dependencies import CurrentUserDep, SettingsDep, VideoClientDep
from vidmesh_api_gateway.errors import PayloadTooLarge
from vidmesh_api_gateway.schemas import (
    ArrivedPart,
    UploadComplete,
    UploadCreated,
    UploadPart,
    UploadRequest,
    UploadState,
    VideoCreated,
    error_responses,
)

router = APIRouter(prefix="/api/videos/uploads", tags=["Upload"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 413, 503))
async def start_upload(
    body: UploadRequest, user: CurrentUserDep, videos: VideoClientDep, settings: SettingsDep
) -> UploadCreated:
    """Start a direct upload of ``size`` bytes: a URL to PUT each part of ``partSize`` bytes
    (the last one shorter), in any order, as many times as needed."""
    if body.size > settings.max_upload_bytes:
        raise PayloadTooLarge(f"The video is larger than {settings.max_upload_bytes} bytes")
    start = contract.UploadStart(user_id=user.id, filename=body.filename, size=body.size)
    grant = await videos.upload_start(start)
    return UploadCreated(
        upload_id=grant.upload_id,
        part_size=grant.part_size,
        parts=[UploadPart(number=part.number, url=part.url) for part in grant.parts],
        expires_at=grant.expires_at,
    )


@router.get("/{upload_id}", responses=error_responses(400, 401, 404, 503))
async def upload_state(
    upload_id: uuid.UUID, user: CurrentUserDep, videos: VideoClientDep
) -> UploadState:
    """The parts that arrived, and fresh URLs for the ones still missing."""
    found = await videos.upload_status(_lookup(upload_id, user.id))
    return UploadState(
        upload_id=found.upload_id,
        filename=found.filename,
        size=found.size,
        part_size=found.part_size,
        parts=[ArrivedPart(number=p.number, size=p.size, etag=p.etag) for p in found.parts],
        missing=[UploadPart(number=p.number, url=p.url) for p in found.missing],
        expires_at=found.expires_at,
    )


@router.post(
    "/{upload_id}/complete",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 404, 409, 413, 415, 503),
)
async def complete_upload(
    upload_id: uuid.UUID, body: UploadComplete, user: CurrentUserDep, videos: VideoClientDep
) -> VideoCreated:
    """Turn the uploaded parts into a video, after checking its size and type from the stored
    bytes (a refused upload is deleted: 413, 415); 409 while parts are missing."""
    finish = contract.UploadFinish(upload_id=str(upload_id), user_id=user.id, title=body.title)
    video = await videos.upload_finish(finish)
    return VideoCreated(id=video.id, title=video.title)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 404, 503),
)
async def abort_upload(
    upload_id: uuid.UUID, user: CurrentUserDep, videos: VideoClientDep
) -> Response:
    """Abort the upload: the parts stored so far are deleted."""
    await videos.upload_abort(_lookup(upload_id, user.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _lookup(upload_id: uuid.UUID, user_id: str) -> contract.UploadLookup:
    return contract.UploadLookup(upload_id=str(upload_id), user_id=user_id)
