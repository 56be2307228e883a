"""The analytics service's settings, from ``VIDMESH_ANALYTICS_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vidmesh.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """``VIDMESH_ANALYTICS_DATABASE_URL`` is required; the rest have defaults."""

    model_config = SettingsConfigDict(env_prefix="VIDMESH_ANALYTICS_")

    port: int = 3003
    kafka_group_id: str = "analytics"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_fetch_max_wait_ms: int = 25
    event_retry_attempts: int = 17_280
    """Tries of one event before it is dead-lettered: with ``event_retry_max_backoff`` of 5 s,
    about a day, so a database outage stalls counting instead of dropping events."""
    event_retry_max_backoff: float = 5.0
    """Longest wait between two tries of a failing event, in seconds."""
