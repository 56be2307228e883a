"""What each service is launched with: the video service's object store settings, and no store
credentials for the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vidmesh.devstack.launch import Wiring, service_env
from vidmesh.devstack.object_storage import ObjectStorage
from vidmesh.devstack.s3 import ObjectStore
from vidmesh.devstack.services import SERVICES, Ports, Secrets

STORE = ObjectStore("http://s3.example.test:9000", "eu-west-1", "KEYID", "SECRET")
DATABASE_URL = "postgresql://video:secret@127.0.0.1:5432/video"


def _wiring(tmp_path: Path, *, public_endpoint: str | None = None) -> Wiring:
    storage = ObjectStorage(
        tmp_path, external=STORE, bucket="videos", public_endpoint=public_endpoint
    )
    return Wiring(Ports.from_base(4000), Secrets(), "127.0.0.1:9092", False, storage, {})


def test_the_video_service_gets_the_stores_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIDMESH_VIDEO_S3_PATH_STYLE", raising=False)
    video = next(service for service in SERVICES if service.name == "video")
    env = service_env(video, DATABASE_URL, _wiring(tmp_path))
    assert env["VIDMESH_VIDEO_S3_ENDPOINT"] == STORE.endpoint
    assert env["VIDMESH_VIDEO_S3_PUBLIC_ENDPOINT"] == STORE.endpoint
    assert env["VIDMESH_VIDEO_S3_REGION"] == "eu-west-1"
    assert env["VIDMESH_VIDEO_S3_BUCKET"] == "videos"
    assert env["VIDMESH_VIDEO_S3_ACCESS_KEY_ID"] == "KEYID"
    assert env["VIDMESH_VIDEO_S3_SECRET_ACCESS_KEY"] == "SECRET"
    assert env["VIDMESH_VIDEO_S3_PATH_STYLE"] == "true"
    origins = json.loads(env["VIDMESH_VIDEO_S3_CORS_ORIGINS"])
    assert origins == ["http://127.0.0.1:4000", "http://localhost:4000"]


def test_a_public_endpoint_goes_into_the_video_services_settings(tmp_path: Path) -> None:
    video = next(service for service in SERVICES if service.name == "video")
    wiring = _wiring(tmp_path, public_endpoint="https://videos.example.test")
    env = service_env(video, DATABASE_URL, wiring)
    assert env["VIDMESH_VIDEO_S3_PUBLIC_ENDPOINT"] == "https://videos.example.test"


def test_a_path_style_from_the_shell_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDMESH_VIDEO_S3_PATH_STYLE", "false")
    video = next(service for service in SERVICES if service.name == "video")
    assert service_env(video, DATABASE_URL, _wiring(tmp_path))["VIDMESH_VIDEO_S3_PATH_STYLE"] == (
        "false"
    )


@pytest.mark.parametrize("name", ["user", "analytics", "api-gateway"])
def test_no_other_service_gets_store_credentials(tmp_path: Path, name: str) -> None:
    service = next(service for service in SERVICES if service.name == name)
    env = service_env(service, DATABASE_URL, _wiring(tmp_path))
    assert not [key for key in env if key.startswith(f"{service.env_prefix}S3_")]
