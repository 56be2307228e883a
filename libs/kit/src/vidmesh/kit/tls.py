"""Service identity from the settings: the TCP listener every service serves on (mutual TLS,
admitting ``allowed_callers``) and the SSL context a caller presents its certificate with."""

from __future__ import annotations

import ssl
from pathlib import Path

from vidmesh.kit.settings import ServiceSettings
from vidmesh.transport import ServerOptions, TcpServer, tls


def server_ssl(settings: ServiceSettings) -> ssl.SSLContext | None:
    """Serve with this service's certificate, requiring one the CA signed; None with TLS off."""
    files = _files(settings)
    if files is None:
        return None
    cert, key, ca = files
    return tls.server_context(cert, key, client_ca=ca)


def client_ssl(settings: ServiceSettings) -> ssl.SSLContext | None:
    """Call other services presenting this service's certificate and verifying theirs against
    the CA (by their service name: pass it as ``server_hostname``); None with TLS off."""
    files = _files(settings)
    if files is None:
        return None
    cert, key, ca = files
    return tls.client_context(ca, certfile=cert, keyfile=key)


def tcp_server(
    settings: ServiceSettings, service: str, *, options: ServerOptions | None = None
) -> TcpServer:
    """``service``'s listener on ``host:port``, with the settings' limits unless ``options``
    says otherwise. With TLS on, only ``allowed_callers`` and the
    service itself (its ``health`` command presents its own certificate) are served."""
    context = server_ssl(settings)
    allowed = None if context is None else [*settings.allowed_callers, service]
    return TcpServer(
        settings.host,
        settings.port,
        options=options or settings.server_options(),
        ssl_context=context,
        allowed_peers=allowed,
    )


def _files(settings: ServiceSettings) -> tuple[Path, Path, Path] | None:
    """Certificate, key and CA; None with TLS off (the settings refuse TLS on without them)."""
    if not settings.tls_enabled:
        return None
    cert, key, ca = settings.tls_cert, settings.tls_key, settings.tls_ca
    if cert is None or key is None or ca is None:
        raise ValueError("mutual TLS is on but tls_cert, tls_key or tls_ca is not set")
    return cert, key, ca
