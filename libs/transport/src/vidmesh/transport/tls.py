"""SSL contexts for the TCP transport: server, client, and mutual TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

PathLike = str | Path


def server_context(
    certfile: PathLike, keyfile: PathLike | None = None, *, client_ca: PathLike | None = None
) -> ssl.SSLContext:
    """A server context; with ``client_ca``, clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    ca: PathLike | None = None,
    *,
    certfile: PathLike | None = None,
    keyfile: PathLike | None = None,
) -> ssl.SSLContext:
    """A client context trusting ``ca`` (or the system store); a cert for mutual TLS."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context
