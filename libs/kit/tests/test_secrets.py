"""Secret settings: placeholders, short and repetitive keys refused, the value never shown."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from vidmesh.kit.cli import settings_error
from vidmesh.kit.secrets import check_secret, check_url_password, secret_problem
from vidmesh.kit.settings import ServiceSettings

ENV_EXAMPLE = Path(__file__).parents[3] / "deploy" / ".env.example"


def example_values() -> list[str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return [line.partition("=")[2] for line in lines if "=" in line and not line.startswith("#")]


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VIDMESH_DEMO_")
    port: int = 3009


@pytest.mark.parametrize("value", example_values())
def test_every_value_of_the_env_example_is_refused(value: str) -> None:
    assert secret_problem(value, min_length=16) is not None


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGE_ME_NOW_0123456789abcdef0123",
        "secret",
        "Secret123!",
        "password",
        "x" * 64,
        "ab" * 32,
        "your-secret-key-goes-here-0123456789",
    ],
)
def test_placeholders_and_repeated_characters_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="the value"):
        check_secret(value, min_length=32)


def test_a_short_key_is_refused_and_a_random_one_passes() -> None:
    assert secret_problem(secrets.token_hex(8), min_length=32) == "is shorter than 32 characters"
    for value in (secrets.token_urlsafe(48), secrets.token_hex(16), secrets.token_urlsafe(30)):
        assert check_secret(value, min_length=32 if len(value) >= 32 else 16) == value


def test_a_placeholder_database_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placeholder = "change-me-user-service-db-0000000"
    monkeypatch.setenv("VIDMESH_DEMO_DATABASE_URL", f"postgresql://u:{placeholder}@db/d")
    with pytest.raises(ValidationError) as caught:
        DemoSettings()
    assert placeholder not in str(caught.value)
    message = settings_error("demo", caught.value, "VIDMESH_DEMO_")
    assert "VIDMESH_DEMO_DATABASE_URL: Value error, the password in the URL is a placeholder" in (
        message
    )
    assert placeholder not in message


def test_a_url_without_a_password_or_with_a_random_one_passes() -> None:
    assert check_url_password("postgresql://u@db/d") == "postgresql://u@db/d"
    url = f"postgresql://u:{secrets.token_urlsafe(24)}@db/d"
    assert check_url_password(url) == url
