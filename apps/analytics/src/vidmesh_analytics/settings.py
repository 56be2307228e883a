"""The analytics service's settings, from ``VIDMESH_ANALYTICS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
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
    event_retry_timeout: float = Field(default=300.0, gt=0)
    """Seconds a failing event is retried, from its first try, before the dead-letter topic:
    a database restart or failover is waited out; a handler failing for longer (a poison
    event, a long outage) no longer holds its partition for a day."""
    event_retry_attempts: int = Field(default=1_000, ge=1)
    """Most tries of one event; with the default backoff ``event_retry_timeout`` ends it first."""
    event_retry_max_backoff: float = 5.0
    """Longest wait between two tries of a failing event, in seconds."""
    inbox_retention_days: float = Field(default=15.0, gt=0)
    """Days the ids of counted events are kept, so a redelivery changes nothing. Keep it above
    the topic's retention plus the video service's outbox retention (7 + 7 days by default:
    the relay may publish an event again up to 7 days on, and a new group reads the topic from
    its start); an id forgotten sooner lets a late redelivery count twice."""
    inbox_purge_interval: float = Field(default=3600.0, gt=0)
    """Seconds between two purges of ids older than ``inbox_retention_days``."""
