"""The video service's settings, from ``VIDMESH_VIDEO_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict
from vidmesh.kit.secrets import check_secret
from vidmesh.kit.settings import ServiceSettings

MiB = 1024 * 1024
MIN_S3_SECRET_LENGTH = 16
"""Shorter than any store's generated keys (AWS: 40 characters; MinIO refuses under 8)."""


class Settings(ServiceSettings):
    """``VIDMESH_VIDEO_DATABASE_URL`` is required; the rest have defaults. The bytes live in an
    S3 bucket (``s3_*``): any S3-compatible store (AWS S3, MinIO, Ceph RGW, SeaweedFS, R2)."""

    model_config = SettingsConfigDict(env_prefix="VIDMESH_VIDEO_")

    port: int = 3002
    database_pool_size: int = 32
    """Connections kept open, and the most in use at once (calls past it wait for one)."""
    max_upload_bytes: int = Field(default=100 * MiB, ge=1)
    """Largest video accepted; a bigger upload is refused (413) and its bytes deleted."""
    max_buffer_bytes: int = Field(default=5 * MiB, ge=1)
    """Largest video the tutorial's ``upload``/``download`` move as one Node Buffer JSON frame
    (about 4 characters a byte); bigger ones use the upload grants and read URLs."""
    buffer_patterns: bool = True
    """Serve the tutorial's ``upload``/``download`` (whole videos as Node Buffer JSON) as NestJS
    peers expect; False (the prod overlay): they answer a 403 RPC error and the TCP port takes
    only small frames (1 Mi characters instead of ``4 * max_buffer_bytes``)."""
    upload_idle_timeout: float = Field(default=3600.0, ge=0)
    """Seconds an unfinished upload may go without a sign of life (its start, a status, a
    part URL) before the sweeper aborts it; clients resuming ask for fresh URLs more often
    than this (``upload_url_ttl``)."""
    upload_sweep_interval: float = Field(default=300.0, gt=0)
    """Seconds between sweeps of idle uploads."""
    outbox_retention_days: float = 7.0
    """Days published events are kept (to publish again to a broker that lost them)."""

    s3_endpoint: str | None = None
    """The store's S3 endpoint as this service and the gateway reach it
    (``http://127.0.0.1:8333``); None: AWS S3's own endpoint for ``s3_region``."""
    s3_public_endpoint: str | None = None
    """The endpoint in URLs handed to browsers and CDNs (playback and direct-upload URLs);
    None: ``s3_endpoint``."""
    s3_region: str = "us-east-1"
    s3_bucket: str = "vidmesh-videos"
    s3_access_key_id: SecretStr | None = None
    """With ``s3_secret_access_key``; None: the AWS default chain (an IAM role, ``AWS_*``)."""
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = True
    """``endpoint/bucket/key`` addressing (MinIO, SeaweedFS, Ceph); False: ``bucket.endpoint``."""
    s3_cors_origins: list[str] = []
    """Web origins allowed to PUT parts and GET videos straight from the store (set on the
    bucket by ``migrate``)."""
    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB)
    """Bytes per part of a multipart upload (S3's minimum is 5 MiB, except the last)."""
    read_url_ttl: float = Field(default=60.0, gt=0)
    """Seconds a read URL handed to the gateway stays valid (it starts reading at once)."""
    playback_url_ttl: float = Field(default=600.0, gt=0)
    """Seconds a playback URL (``GET /api/videos/{id}/url``) stays valid."""
    upload_url_ttl: float = Field(default=1800.0, gt=0)
    """Seconds a part URL of an upload stays valid."""

    @field_validator("s3_secret_access_key")
    @classmethod
    def _strong_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            check_secret(secret.get_secret_value(), min_length=MIN_S3_SECRET_LENGTH)
        return secret
