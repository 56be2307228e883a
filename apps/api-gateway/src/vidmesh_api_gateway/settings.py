"""The gateway's settings, from ``VIDMESH_API_GATEWAY_*`` variables (read once in ``__main__``)."""

from __future__ import annotations

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from vidmesh.kit.secrets import check_secret, check_url_password
from vidmesh.kit.settings import ServiceSettings

MIN_SECRET_LENGTH = 32
"""HS256 wants a key of at least 256 bits (RFC 7518 3.2); PyJWT warns below it."""


class Settings(ServiceSettings):
    """HTTP on ``host:port``; the three services by ``host:port``; JWT secrets with no default."""

    model_config = SettingsConfigDict(
        env_prefix="VIDMESH_API_GATEWAY_", extra="ignore", env_nested_delimiter="__"
    )

    port: int = 3000
    user_address: str = "127.0.0.1:3001"
    video_address: str = "127.0.0.1:3002"
    analytics_address: str = "127.0.0.1:3003"
    jwt_access_secret: SecretStr = Field(min_length=MIN_SECRET_LENGTH)
    jwt_refresh_secret: SecretStr = Field(min_length=MIN_SECRET_LENGTH)
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=2_592_000, gt=0)
    max_upload_bytes: int = Field(default=104_857_600, gt=0)
    max_concurrent_uploads: int = Field(default=16, ge=1)
    """Uploads streamed through the gateway at once (``POST /api/videos``; each holds up to one
    store part, 8 MiB, so 16 bound them to 128 MiB); past it 503 with ``Retry-After``. Direct
    uploads send their parts to the store and take no slot."""
    client_pool_size: int = Field(default=4, ge=1)
    """TCP connections to each service."""
    request_timeout: float = Field(default=10.0, gt=0)
    """Seconds a call to a service (or one item of a streamed answer) may take."""
    store_connections: int = Field(default=256, ge=1)
    """Connections to the object store kept at most (downloads and upload parts)."""
    store_timeout: float = Field(default=15.0, gt=0)
    """Seconds the object store may take to connect or to send the next bytes."""
    access_log: bool = False
    """uvicorn's line per request. Off by default: formatting and writing it cost about a tenth
    of the gateway's CPU per request; errors and domain events are logged either way."""

    # HTTP limits (body_limits.py; the server's own in vidmesh.transport.http_limits)
    max_auth_body_bytes: int = Field(default=4096, gt=0)
    """Request body of ``/api/auth/*`` (a few hundred bytes of JSON at most); past it 413."""
    max_body_bytes: int = Field(default=65_536, gt=0)
    """Request body of any other route but the streamed upload (``max_upload_bytes``)."""
    max_header_bytes: int = Field(default=16_384, gt=0)
    """Request line and headers; past it 431."""
    header_timeout: float = Field(default=5.0, gt=0)
    """Seconds from a request's first byte (or a new connection) to the end of its headers."""
    body_idle_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request body may stop arriving before the connection is closed."""
    linger_timeout: float = Field(default=10.0, gt=0)
    """Seconds a connection answered before its body arrived keeps reading (and dropping) it."""
    linger_bytes: int = Field(default=33_554_432, ge=0)
    """Bytes such a connection reads (and drops) at most before it closes."""
    send_idle_timeout: float = Field(default=60.0, gt=0)
    """Seconds a client may read nothing of an answer (a download) before it is closed."""
    limit_concurrency: int = Field(default=4096, ge=1)
    """Open connections (or requests in flight) past which a new request gets 503."""
    keep_alive_timeout: int = Field(default=5, ge=1)
    """Seconds an idle kept-alive connection stays open."""

    # -- abuse limits (ratelimits.py), revoked sessions (revocation.py), housekeeping --------
    rate_limit_storage: SecretStr = SecretStr("memory://")
    """Where rate-limit counters live (a ``limits`` storage URI): ``memory://``, this process
    only; ``redis://host:6379`` (``rediss://``, ``valkey://``...) shared by every replica."""
    signin_limit_per_address: str = "30/minute"
    signin_limit_per_account: str = "10/minute"
    signup_limit_per_address: str = "20/minute"
    signup_limit_per_account: str = "5/minute"
    refresh_limit_per_family: str = "30/minute"
    trusted_proxies: list[str] = []
    """Addresses or networks (CIDR) of the reverse proxies whose ``X-Forwarded-For`` names the
    client; empty: the client is the peer address, and the header is ignored."""
    session_check_seconds: float = Field(default=5.0, ge=0)
    """How long a replica trusts its last look at an access token's session: a token of a
    session signed out (or revoked for reuse) on another replica works at most this long."""
    refresh_token_purge_interval: float = Field(default=3600.0, gt=0)
    """Seconds between two purges of expired refresh tokens from the gateway's table."""

    @field_validator(
        "signin_limit_per_address",
        "signin_limit_per_account",
        "signup_limit_per_address",
        "signup_limit_per_account",
        "refresh_limit_per_family",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("expected a rate limit such as 10/minute") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _no_placeholder_store_password(cls, uri: SecretStr) -> SecretStr:
        check_url_password(uri.get_secret_value())
        return uri

    @field_validator("jwt_access_secret", "jwt_refresh_secret")
    @classmethod
    def _strong_secret(cls, secret: SecretStr) -> SecretStr:
        check_secret(secret.get_secret_value(), min_length=MIN_SECRET_LENGTH)
        return secret

    @model_validator(mode="after")
    def _secrets_differ(self) -> Settings:
        # One key for both kinds is the tutorial's bug: a leaked refresh key would mint access.
        if self.jwt_access_secret.get_secret_value() == self.jwt_refresh_secret.get_secret_value():
            raise ValueError("jwt_access_secret and jwt_refresh_secret must differ")
        return self


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:3001"`` too) as ``(host, port)``."""
    host, separator, port = address.strip().rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]"), int(port)
