"""Finding: placeholder JWT secrets (those of deploy/.env.example) were accepted at start.

Each service process is started for real (``python -m <package> serve``) with a placeholder
and must exit non-zero at once, naming the setting and never printing the value."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from vidmesh.devstack.services import load_secrets
from vidmesh.kit.secrets import secret_problem

EXAMPLE_ACCESS = "change-me-access-token-key-at-least-32-chars"  # deploy/.env.example
START_TIMEOUT = 60.0


def serve(package: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("VIDMESH_")}
    return subprocess.run(
        [sys.executable, "-m", package, "serve"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def gateway_env(access: str, refresh: str) -> dict[str, str]:
    return {
        "VIDMESH_API_GATEWAY_DATABASE_URL": f"postgresql://gw:{secrets.token_hex(16)}@127.0.0.1/gw",
        "VIDMESH_API_GATEWAY_JWT_ACCESS_SECRET": access,
        "VIDMESH_API_GATEWAY_JWT_REFRESH_SECRET": refresh,
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "placeholder", [EXAMPLE_ACCESS, "changeme" * 5, "x" * 40, "secret"], ids=str
)
def test_gateway_refuses_to_start_with_a_placeholder_jwt_secret(placeholder: str) -> None:
    answer = serve("vidmesh_api_gateway", gateway_env(placeholder, secrets.token_urlsafe(48)))
    assert answer.returncode != 0
    assert "VIDMESH_API_GATEWAY_JWT_ACCESS_SECRET" in answer.stderr, answer.stderr
    assert "refusing to start" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert placeholder not in answer.stderr + answer.stdout


@pytest.mark.timeout(120)
def test_video_refuses_a_placeholder_s3_secret_and_database_password() -> None:
    s3_placeholder = "change-me-s3-secret-access-key-0000000000"  # deploy/.env.example
    db_placeholder = "change-me-video-service-db-000000"
    env = {
        "VIDMESH_VIDEO_DATABASE_URL": f"postgresql://video:{db_placeholder}@127.0.0.1/video",
        "VIDMESH_VIDEO_S3_ACCESS_KEY_ID": "vidmesh-video",
        "VIDMESH_VIDEO_S3_SECRET_ACCESS_KEY": s3_placeholder,
    }
    answer = serve("vidmesh_video", env)
    assert answer.returncode != 0
    assert "VIDMESH_VIDEO_S3_SECRET_ACCESS_KEY" in answer.stderr, answer.stderr
    assert "VIDMESH_VIDEO_DATABASE_URL" in answer.stderr
    assert s3_placeholder not in answer.stderr
    assert db_placeholder not in answer.stderr


def test_the_devstack_generated_secrets_pass(tmp_path: Path) -> None:
    made = load_secrets(tmp_path / "secrets.json", ["role_a", "role_b"])
    assert secret_problem(made.jwt_access_secret, min_length=32) is None
    assert secret_problem(made.jwt_refresh_secret, min_length=32) is None
    assert secret_problem(made.s3_secret_access_key, min_length=16) is None
    assert all(secret_problem(password) is None for password in made.passwords.values())
