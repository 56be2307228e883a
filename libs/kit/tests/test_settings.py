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
