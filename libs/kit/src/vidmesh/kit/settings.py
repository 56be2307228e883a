"""The settings every service shares; each service subclasses :class:`ServiceSettings` with its
own env prefix (``VIDMESH_USER_``...). Read once in ``__main__`` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from vidmesh.transport import ServerOptions

_TCP_DEFAULTS = ServerOptions()


class ServiceSettings(BaseSettings):
    """Where the service listens, its database, the broker, and how it logs.

    ``database_url`` has no default: a service refuses to start rather than guess a password.
    """

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int
    database_url: SecretStr
    """``postgresql://role:password@host:port/database`` of this service's own database."""
    database_pool_size: int = 10
    kafka_bootstrap: str = "127.0.0.1:9092"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    drain_timeout: float = 30.0
    """Seconds a stopping service gives work in flight."""
    tcp_max_connections: int = Field(default=_TCP_DEFAULTS.max_connections, ge=1)
    """Connections the TCP port holds at once; later ones are closed as soon as accepted."""
    tcp_frame_deadline: float = Field(default=_TCP_DEFAULTS.incomplete_frame_timeout, gt=0)
    """Seconds a request frame may take from its first byte to its last."""
    tcp_max_incomplete_bytes: int = Field(default=_TCP_DEFAULTS.max_incomplete_bytes, ge=1)
    """Bytes held in unfinished request frames over every connection; a read past it closes
    its connection."""

    def server_options(self, *, max_frame_length: int | None = None) -> ServerOptions:
        """The TCP server's limits from these settings (``max_frame_length``: the service's)."""
        return ServerOptions(
            max_frame_length=max_frame_length or _TCP_DEFAULTS.max_frame_length,
            incomplete_frame_timeout=self.tcp_frame_deadline,
            max_incomplete_bytes=self.tcp_max_incomplete_bytes,
            max_connections=self.tcp_max_connections,
            drain_timeout=self.drain_timeout,
        )
