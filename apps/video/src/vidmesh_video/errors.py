"""The video service's domain errors; the caller receives Nest's
``{statusCode, message, error}``."""

from __future__ import annotations

from vidmesh.kit.errors import ServiceError


class VideoError(ServiceError):
    """The root of this service's errors."""


class InvalidVideoId(VideoError):
    status_code = 400
    default_message = "Video id must be a UUID"


class InvalidVideoData(VideoError):
    """Bytes that cannot be decoded: a Buffer value outside 0-255."""

    status_code = 400
    default_message = "Invalid video data"


class VideoNotFound(VideoError):
    status_code = 404
    default_message = "Video not found"


class UploadNotFound(VideoError):
    status_code = 404
    default_message = "Upload not found"


class UploadTooLarge(VideoError):
    status_code = 413
    default_message = "Video too large"


class UnsupportedVideoType(VideoError):
    status_code = 415
    default_message = "Only MP4 and WebM videos are accepted"


class BufferPatternsOff(VideoError):
    """``upload``/``download`` asked of a service with ``buffer_patterns`` switched off."""

    status_code = 403
    default_message = (
        "The Buffer patterns upload and download are switched off on this service "
        "(VIDMESH_VIDEO_BUFFER_PATTERNS=false): use uploadStart and grantRead"
    )


class RangeNotSatisfiable(VideoError):
    status_code = 416
    default_message = "Range not satisfiable"


class UploadIncomplete(VideoError):
    """Finishing an upload whose declared parts are not all in the store."""

    status_code = 409
    default_message = "Not every part of the upload has arrived"


class StoreUnavailable(VideoError):
    """The object store did not answer (or failed): worth retrying later."""

    status_code = 503
    default_message = "The video store is unavailable"
