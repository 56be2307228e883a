"""KafkaSecurity: settings -> aiokafka keyword arguments (the pure mapping; the handshakes with a
broker are proven in tests/security/test_kafka_security.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr, ValidationError
from vidmesh.transport.kafka import KafkaSecurity
from vidmesh.transport.kafka.security import client_kwargs


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kafka-pki") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(path)
    return path


def test_plaintext_adds_no_arguments() -> None:
    assert KafkaSecurity().client_kwargs() == {}
    assert client_kwargs(None) == {}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_maps_each_mechanism(mechanism: str, ca_file: Path) -> None:
    security = KafkaSecurity.model_validate(
        {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": ca_file,
            "sasl_mechanism": mechanism,
            "sasl_username": "video",
            "sasl_password": "kafka-secret",
        }
    )
    kwargs = security.client_kwargs()
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "video",
        "sasl_plain_password": "kafka-secret",
    }


def test_ssl_context_verifies_the_broker(ca_file: Path) -> None:
    context = KafkaSecurity(security_protocol="SSL", ssl_cafile=ca_file).ssl_context()
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_hostname_check_can_be_turned_off_but_not_the_chain(ca_file: Path) -> None:
    security = KafkaSecurity(security_protocol="SSL", ssl_cafile=ca_file, ssl_check_hostname=False)
    context = security.ssl_context()
    assert context is not None
    assert context.check_hostname is False
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="sasl_username and sasl_password"):
        KafkaSecurity(security_protocol="SASL_PLAINTEXT", sasl_username="video")


def test_a_key_without_a_certificate_is_refused(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="ssl_keyfile needs ssl_certfile"):
        KafkaSecurity(security_protocol="SSL", ssl_keyfile=ca_file)


def test_an_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValidationError, match="sasl_mechanism"):
        KafkaSecurity.model_validate({"sasl_mechanism": "GSSAPI"})


def test_the_password_stays_out_of_reprs() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_SSL", sasl_username="u", sasl_password=SecretStr("kafka-secret")
    )
    assert "kafka-secret" not in repr(security)


async def test_aiokafka_accepts_the_arguments(ca_file: Path) -> None:
    security = KafkaSecurity(
        security_protocol="SASL_SSL",
        ssl_cafile=ca_file,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password=SecretStr("p"),
    )
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **security.client_kwargs())
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_mechanism == "SCRAM-SHA-512"
    await producer.stop()
