"""The local CA and the services' certificates: made once, kept while valid, remade when
missing, expiring or signed by another CA; keys never readable by others."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vidmesh.devstack import certs
from vidmesh.devstack.certs import ensure_certificates
from vidmesh.devstack.launch import Wiring, service_env
from vidmesh.devstack.object_storage import ObjectStorage
from vidmesh.devstack.s3 import ObjectStore
from vidmesh.devstack.services import SERVICES, Ports, Secrets

NAMES = ["user", "api-gateway"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_each_service_gets_a_certificate_named_after_it_for_both_ends(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path, NAMES)
    for name in NAMES:
        cert = load(made.cert(name))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [name]
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        cert.verify_directly_issued_by(load(made.ca))
        assert (made.folder(name) / "ca.crt").read_bytes() == made.ca.read_bytes()


def test_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path, NAMES)
    for key in [made.ca_key, *(made.key(name) for name in NAMES)]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_certificates_are_kept_across_starts_and_remade_when_missing(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, NAMES)
    before = {name: first.cert(name).read_bytes() for name in NAMES}
    first.cert("user").unlink()
    again = ensure_certificates(tmp_path, NAMES)
    assert again.cert("api-gateway").read_bytes() == before["api-gateway"]
    assert again.cert("user").read_bytes() != before["user"]
    load(again.cert("user")).verify_directly_issued_by(load(again.ca))


def test_an_expiring_ca_remakes_every_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_certificates(tmp_path, NAMES)
    old_ca = first.ca.read_bytes()
    later = datetime.datetime.now(datetime.UTC) + certs.CA_VALIDITY - datetime.timedelta(days=1)
    monkeypatch.setattr(certs, "_now", lambda: later)
    again = ensure_certificates(tmp_path, NAMES)
    assert again.ca.read_bytes() != old_ca
    for name in NAMES:
        load(again.cert(name)).verify_directly_issued_by(load(again.ca))


def test_the_environment_points_each_service_at_its_files_or_turns_tls_off(
    tmp_path: Path,
) -> None:
    made = ensure_certificates(tmp_path / "tls", [s.name for s in SERVICES])
    storage = ObjectStorage(
        tmp_path, external=ObjectStore("http://s3.test", "r", "k", "s"), bucket="b"
    )
    wiring = Wiring(Ports(), Secrets(), "127.0.0.1:9092", False, storage, {}, made)
    user = next(s for s in SERVICES if s.name == "user")
    env = service_env(user, "postgresql://u:p@h/d", wiring)
    assert env["VIDMESH_USER_TLS_ENABLED"] == "true"
    assert env["VIDMESH_USER_TLS_CERT"] == str(made.cert("user"))
    assert env["VIDMESH_USER_TLS_KEY"] == str(made.key("user"))
    assert env["VIDMESH_USER_TLS_CA"] == str(made.folder("user") / "ca.crt")
    plain = Wiring(Ports(), Secrets(), "127.0.0.1:9092", False, storage, {})
    assert service_env(user, "postgresql://u:p@h/d", plain)["VIDMESH_USER_TLS_ENABLED"] == "false"
