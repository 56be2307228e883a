"""The settings every service shares; each service subclasses :class:`ServiceSettings` with its
own env prefix (``VIDMESH_USER_``...). Read once in ``__main__`` and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    tls_enabled: bool = True
    """Mutual TLS between services (docs/platform.md): then ``tls_cert``, ``tls_key`` and
    ``tls_ca`` are required, and a service starts only with them. False only beside peers that
    have no TLS (the tutorial's NestJS 9 gateway): any process that reaches the port is then
    trusted."""
    tls_cert: Path | None = None
    """This service's certificate (PEM), named after it: DNS name and CN ``user``, ``video``,
    ``api-gateway``...; it serves (TCP services) and presents itself to others (the gateway)."""
    tls_key: Path | None = None
    """Its private key (PEM)."""
    tls_ca: Path | None = None
    """The CA (PEM) that signed the services' certificates: callers and servers are checked
    against it."""
    allowed_callers: list[str] = ["api-gateway"]
    """Certificate names admitted to this service's TCP port (besides its own, for its health
    command); a caller presenting any other is closed before its first frame, and audited."""

    @model_validator(mode="after")
    def _tls_files_given(self) -> Self:
        if self.tls_enabled and None in (self.tls_cert, self.tls_key, self.tls_ca):
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            raise ValueError(
                f"mutual TLS is on: set {prefix}TLS_CERT, {prefix}TLS_KEY and {prefix}TLS_CA "
                f"(or {prefix}TLS_ENABLED=false beside a peer without TLS)"
            )
        return self
