"""``python -m vidmesh_video serve|migrate|health``."""

from __future__ import annotations

from vidmesh.kit.cli import service_app

from vidmesh_video.main import SERVICE, build_service
from vidmesh_video.settings import Settings
from vidmesh_video.upgrade import migrate

app = service_app(
    SERVICE, package="vidmesh_video", settings=Settings, build=build_service, migrate=migrate
)

if __name__ == "__main__":
    app()
