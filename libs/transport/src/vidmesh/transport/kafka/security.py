"""KafkaSecurity: how every aiokafka client of a service reaches the brokers (TLS, SASL).

The one home for turning security settings into aiokafka keyword arguments: the transport's
producer and consumer, the request-reply client and its reply listener, the admin client and the
kit's outbox relay all take a ``KafkaSecurity`` and spread :meth:`KafkaSecurity.client_kwargs`
into their constructors, so a managed Kafka (TLS, SCRAM or PLAIN) reaches every one of them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from vidmesh.transport.tls import client_context

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurity(BaseModel):
    """Kafka's own names: ``security_protocol`` says whether TLS and/or SASL are used.

    ``ssl_cafile`` None trusts the system's CAs (a managed Kafka with a public certificate);
    ``ssl_certfile`` (with ``ssl_keyfile``, unless the key is in the same file) is a client
    certificate for brokers that ask for one. SASL needs ``sasl_username`` and
    ``sasl_password``; PLAIN sends the password itself, so use it over SASL_SSL only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.uses_sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(f"{self.security_protocol} needs sasl_username and sasl_password")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (TLS 1.2 or newer, the broker's certificate verified), or
        None without TLS."""
        if not self.uses_tls:
            return None
        context = client_context(
            self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
        )
        if not self.ssl_check_hostname:
            context.check_hostname = False  # the chain is still verified
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and
        ``AIOKafkaAdminClient``; empty for PLAINTEXT, so their defaults stay as they were."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked by _complete
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs


PLAINTEXT = KafkaSecurity()
"""No TLS, no SASL: the embedded broker of ``vidmesh up`` and the tests."""


def client_kwargs(security: KafkaSecurity | None) -> dict[str, Any]:
    """``security.client_kwargs()``, or nothing for None (plaintext)."""
    return {} if security is None else security.client_kwargs()
