"""The settings every service shares; each service subclasses :class:`ServiceSettings` with its
own env prefix (``VIDMESH_USER_``...). Read once in ``__main__`` and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from vidmesh.kit.secrets import check_url_password
from vidmesh.transport import ServerOptions
from vidmesh.transport.kafka.security import KafkaSecurity, SaslMechanism, SecurityProtocol

_TCP_DEFAULTS = ServerOptions()
SERVICE_FRAME_LENGTH = 1024 * 1024
"""The longest request frame a service takes (UTF-16 units): requests between the services are
small; only the tutorial's Buffer uploads need more (the video service raises it for them)."""


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
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """``SSL``, ``SASL_SSL`` (a managed Kafka), ``SASL_PLAINTEXT``; for every Kafka client."""
    kafka_ssl_cafile: Path | None = None
    """CA bundle (PEM) the brokers' certificates must chain to; None: the system's CAs."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate (PEM) for brokers that ask for one (mutual TLS)."""
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
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
    tcp_max_connections: int = Field(default=_TCP_DEFAULTS.max_connections, ge=1)
    """Connections the TCP port holds at once; later ones are closed as soon as accepted."""
    tcp_frame_deadline: float = Field(default=_TCP_DEFAULTS.incomplete_frame_timeout, gt=0)
    """Seconds a request frame may take from its first byte to its last."""
    tcp_max_incomplete_bytes: int = Field(default=_TCP_DEFAULTS.max_incomplete_bytes, ge=1)
    """Bytes held in unfinished request frames over every connection; a read past it closes
    its connection."""

    @model_validator(mode="after")
    def _tls_files_given(self) -> Self:
        if self.tls_enabled and None in (self.tls_cert, self.tls_key, self.tls_ca):
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            raise ValueError(
                f"mutual TLS is on: set {prefix}TLS_CERT, {prefix}TLS_KEY and {prefix}TLS_CA "
                f"(or {prefix}TLS_ENABLED=false beside a peer without TLS)"
            )
        return self

    def server_options(self, *, max_frame_length: int | None = None) -> ServerOptions:
        """The TCP server's limits from these settings (``max_frame_length``: the service's)."""
        return ServerOptions(
            max_frame_length=max_frame_length or SERVICE_FRAME_LENGTH,
            incomplete_frame_timeout=self.tcp_frame_deadline,
            max_incomplete_bytes=self.tcp_max_incomplete_bytes,
            max_connections=self.tcp_max_connections,
            drain_timeout=self.drain_timeout,
        )

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Self:
        try:  # refuse to start, rather than fail at the first Kafka connection
            self.kafka_security  # noqa: B018
        except ValidationError as error:
            raise ValueError(f"kafka security settings: {error}") from None
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The ``kafka_*`` security settings, checked (SASL needs a username and password), for
        every aiokafka client the service builds."""
        return KafkaSecurity(
            security_protocol=self.kafka_security_protocol,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
        )

    @field_validator("database_url")
    @classmethod
    def _no_placeholder_password(cls, url: SecretStr) -> SecretStr:
        check_url_password(url.get_secret_value())
        return url
