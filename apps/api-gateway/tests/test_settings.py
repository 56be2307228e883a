import pytest
from pydantic import ValidationError

from vidmesh_api_gateway.settings import Settings, split_address

# random-looking keys: placeholders and repeated characters are refused (vidmesh.kit.secrets)
ACCESS_SECRET = "k3Yq-access-9fT2mZpW7xLr0aBvN4cHdE6s"
REFRESH_SECRET = "R8uJ-refresh-2wQe5tYk1oPlZ3xMnB7vC9g"


def test_settings_come_from_the_gateway_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDMESH_API_GATEWAY_DATABASE_URL", "postgresql://u:p@h:5432/d")
    monkeypatch.setenv("VIDMESH_API_GATEWAY_JWT_ACCESS_SECRET", ACCESS_SECRET)
    monkeypatch.setenv("VIDMESH_API_GATEWAY_JWT_REFRESH_SECRET", REFRESH_SECRET)
    monkeypatch.setenv("VIDMESH_API_GATEWAY_VIDEO_ADDRESS", "video:3002")
    monkeypatch.setenv("VIDMESH_API_GATEWAY_TLS_ENABLED", "false")
    settings = Settings()
    assert settings.port == 3000
    assert settings.video_address == "video:3002"
    assert settings.user_address == "127.0.0.1:3001"
    assert settings.max_upload_bytes == 104_857_600
    assert settings.access_token_ttl_seconds == 900


def test_settings_refuse_to_start_without_jwt_secrets() -> None:
    with pytest.raises(ValidationError, match="jwt_access_secret"):
        Settings(database_url="postgresql://u:p@h/d")


def test_settings_refuse_one_secret_for_both_token_kinds() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        Settings(
            database_url="postgresql://u:p@h/d",
            tls_enabled=False,
            jwt_access_secret=ACCESS_SECRET,
            jwt_refresh_secret=ACCESS_SECRET,
        )


def test_settings_refuse_a_short_secret() -> None:
    with pytest.raises(ValidationError):
        Settings(
            database_url="postgresql://u:p@h/d",
            tls_enabled=False,
            jwt_access_secret="short",
            jwt_refresh_secret=REFRESH_SECRET,
        )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:3001", ("127.0.0.1", 3001)),
        ("video:3002", ("video", 3002)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_split_address_reads_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["nohost", ":3001", "host:", "host:port"])
def test_split_address_refuses_what_is_not_host_port(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_address(address)
