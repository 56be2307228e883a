"""The platform's service identities: a local CA and one certificate per service, made once and
kept (``vidmesh up`` and ``vidmesh certs``).

Each service's files sit in a folder of their own, laid out as a Kubernetes TLS Secret (the one
cert-manager writes) is mounted: ``<dir>/<service>/tls.crt``, ``tls.key`` and ``ca.crt``, so the
same three paths serve a local run, Compose (the folder mounted at ``/tls``) and k8s. The CA's key
stays in ``<dir>/ca.key`` and goes nowhere else. A certificate's DNS name and common name are the
service's name (``api-gateway``, ``user``...), which is also its host name in Compose and k8s:
callers are admitted by it, and servers verified by it. Keys are EC P-256, files mode 600.
"""

from __future__ import annotations

import datetime
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vidmesh.transport import tls

CA_NAME: Final = "vidmesh local CA"
CA_VALIDITY: Final = datetime.timedelta(days=3650)
CERT_VALIDITY: Final = datetime.timedelta(days=397)
RENEW_BEFORE: Final = datetime.timedelta(days=30)
"""A certificate (or CA) with less than this left is made again at the next start."""
SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
_BACKDATE: Final = datetime.timedelta(minutes=5)  # clocks of containers drift a little


@dataclass(frozen=True)
class Certificates:
    """Where the CA and each service's certificate are (see the module's layout)."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    def folder(self, service: str) -> Path:
        return self.dir / service

    def cert(self, service: str) -> Path:
        return self.folder(service) / "tls.crt"

    def key(self, service: str) -> Path:
        return self.folder(service) / "tls.key"

    def env(self, prefix: str, service: str) -> dict[str, str]:
        """A service's TLS settings (``VIDMESH_USER_TLS_CERT``...) pointing at its files."""
        folder = self.folder(service)
        return {
            f"{prefix}TLS_ENABLED": "true",
            f"{prefix}TLS_CERT": str(folder / "tls.crt"),
            f"{prefix}TLS_KEY": str(folder / "tls.key"),
            f"{prefix}TLS_CA": str(folder / "ca.crt"),
        }

    def client_context(self, service: str) -> ssl.SSLContext:
        """Call a service presenting ``service``'s certificate (verify the server by its name:
        ``server_hostname="user"``)."""
        return tls.client_context(self.ca, certfile=self.cert(service), keyfile=self.key(service))


def ensure_certificates(directory: Path, services: Iterable[str]) -> Certificates:
    """The CA and a certificate for each of ``services`` in ``directory``: kept when present and
    valid for more than ``RENEW_BEFORE``, else made (a new CA remakes every certificate)."""
    certificates = Certificates(directory.absolute())
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ensure_ca(certificates)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    for service in services:
        folder = certificates.folder(service)
        folder.mkdir(exist_ok=True)
        if not _usable(certificates.cert(service), certificates.key(service), service, ca_cert):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _issue(service, key, ca_cert, ca_key)
            _write(certificates.key(service), _key_pem(key), private=True)
            _write(certificates.cert(service), cert.public_bytes(serialization.Encoding.PEM))
        if not (folder / "ca.crt").exists() or (folder / "ca.crt").read_bytes() != ca_pem:
            _write(folder / "ca.crt", ca_pem)
    return certificates


def _ensure_ca(certificates: Certificates) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(certificates.ca.read_bytes())
        key = serialization.load_pem_private_key(certificates.ca_key.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and _lasts(cert):
            return cert, key
    except (OSError, ValueError):
        pass  # missing or unreadable: make a new one
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(certificates.ca_key, _key_pem(key), private=True)
    _write(certificates.ca, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    service: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A certificate both to serve and to call with, named ``service`` (DNS name and CN)."""
    now = _now()
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + CERT_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(service)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([SERVER_AUTH, CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _usable(cert_path: Path, key_path: Path, service: str, ca_cert: x509.Certificate) -> bool:
    """The certificate exists, names ``service``, was signed by this CA, lasts, has its key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False  # missing, unreadable, or another CA's: make a new one
    same_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    named = names.get_values_for_type(x509.DNSName) == [service]
    return same_key and named and _lasts(cert)


def _lasts(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` whole (a reader never sees half a file); keys are mode 600 from the
    start, never readable by others for a moment."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(temporary, 0o600 if private else 0o644)  # O_CREAT's mode is masked by the umask
    temporary.replace(path)
