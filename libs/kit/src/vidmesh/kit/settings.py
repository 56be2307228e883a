"""The settings every service shares; each service subclasses :class:`ServiceSettings` with its
own env prefix (``VIDMESH_USER_``...). Read once in ``__main__`` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from vidmesh.kit.secrets import check_url_password


class ServiceSettings(BaseSettings):
    """Where the service listens, its database, the broker, and how it logs.

    ``database_url`` has no default: a service refuses to start rather than guess a password.
    """

    # hide_input_in_errors: a refused setting's error must not print its value (a secret).
    model_config = SettingsConfigDict(
        extra="ignore", env_nested_delimiter="__", hide_input_in_errors=True
    )

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

    @field_validator("database_url")
    @classmethod
    def _no_placeholder_password(cls, url: SecretStr) -> SecretStr:
        check_url_password(url.get_secret_value())
        return url
