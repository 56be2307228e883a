"""The video service's settings, from ``VIDMESH_VIDEO_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from vidmesh.kit.settings import ServiceSettings

MiB = 1024 * 1024


class Settings(ServiceSettings):
    """``VIDMESH_VIDEO_DATABASE_URL`` is required; the rest have defaults."""

    model_config = SettingsConfigDict(env_prefix="VIDMESH_VIDEO_")

    port: int = 3002
    database_pool_size: int = 32
    """Connections kept open, and the most in use at once (calls past it wait for one)."""
    max_upload_bytes: int = Field(default=100 * MiB, ge=1)
    """Largest video accepted; a chunk past it gets 413 and the upload is dropped."""
    max_buffer_bytes: int = Field(default=5 * MiB, ge=1)
    """Largest video the tutorial's ``upload``/``download`` move as one Node Buffer JSON frame
    (about 4 characters a byte); bigger ones use the chunked patterns."""
    upload_idle_timeout: float = 3600.0
    """Seconds an unfinished upload may go without a chunk before it is swept away."""
    outbox_retention_days: float = 7.0
    """Days published events are kept (to publish again to a broker that lost them)."""
