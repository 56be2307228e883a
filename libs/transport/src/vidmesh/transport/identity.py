"""Service identity: who is at the other end of a mutual-TLS connection, and whether a server
admits them.

A service's identity is the DNS names of its certificate (subjectAltName), or its common name
when it has none: one certificate per service, named after it (``api-gateway``, ``video``), so
the name a caller is admitted by is also the host name a client verifies the server by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

audit = structlog.get_logger("vidmesh.audit")
"""Security events (refused connections here; failed signins and the like in the gateway)."""


def peer_names(cert: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The identities in a peer certificate as ``SSLSocket.getpeercert()`` returns it: its DNS
    names, else its common name; () for no (or an unverified, empty) certificate."""
    if not cert:
        return ()
    dns = tuple(value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")
    if dns:
        return dns
    return tuple(
        value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
    )


class Admission:
    """The callers a server admits, by identity; the rest are refused and audited."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(allowed)

    def admits(self, names: Iterable[str]) -> bool:
        return not self.allowed.isdisjoint(names)

    def check(self, peer: str, cert: Mapping[str, Any] | None) -> bool:
        """True when the certificate names an allowed caller; else log the refusal."""
        names = peer_names(cert)
        if self.admits(names):
            return True
        audit.warning(
            "service_connection_refused",
            peer=peer,
            identity=list(names) or None,
            allowed=sorted(self.allowed),
        )
        return False
