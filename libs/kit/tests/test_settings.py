"""Settings come from the environment, with the service's prefix, and refuse to guess secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from vidmesh.kit.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIDMESH_DEMO_")
    port: int = 3009


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_PORT", "4000")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_ENABLED", "false")
    settings = DemoSettings()
    assert settings.port == 4000
    assert settings.database_url.get_secret_value().endswith("/demo")
    assert "pw" not in repr(settings)


def test_settings_without_a_database_url_refuse_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDMESH_DEMO_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="database_url"):
        DemoSettings()


def test_kafka_security_settings_reach_the_aiokafka_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_ENABLED", "false")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SASL_USERNAME", "video")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SASL_PASSWORD", "kafka-secret")
    settings = DemoSettings()
    assert settings.kafka_security.client_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "video",
        "sasl_plain_password": "kafka-secret",
    }
    assert "kafka-secret" not in repr(settings)


def test_kafka_sasl_without_a_password_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_ENABLED", "false")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("VIDMESH_DEMO_KAFKA_SASL_USERNAME", "video")
    monkeypatch.delenv("VIDMESH_DEMO_KAFKA_SASL_PASSWORD", raising=False)
    with pytest.raises(ValidationError, match="sasl_password"):
        DemoSettings()


def test_kafka_defaults_to_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_ENABLED", "false")
    assert DemoSettings().kafka_security.client_kwargs() == {}


def test_mutual_tls_is_on_by_default_and_refuses_to_start_without_its_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_CERT", "/tls/tls.crt")
    with pytest.raises(ValidationError, match="VIDMESH_DEMO_TLS_KEY"):
        DemoSettings()
    monkeypatch.setenv("VIDMESH_DEMO_TLS_KEY", "/tls/tls.key")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_CA", "/tls/ca.crt")
    settings = DemoSettings()
    assert settings.tls_enabled
    assert settings.allowed_callers == ["api-gateway"]


def test_allowed_callers_and_tls_off_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", "postgresql://demo:pw@db:5432/demo")
    monkeypatch.setenv("VIDMESH_DEMO_TLS_ENABLED", "false")
    monkeypatch.setenv("VIDMESH_DEMO_ALLOWED_CALLERS", '["api-gateway", "nest-gateway"]')
    settings = DemoSettings()
    assert not settings.tls_enabled
    assert settings.allowed_callers == ["api-gateway", "nest-gateway"]
