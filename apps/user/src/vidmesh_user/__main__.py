"""``python -m vidmesh_user serve|migrate|health``."""

from __future__ import annotations

from vidmesh.kit.cli import service_app

from vidmesh_user.main import SERVICE, build_service
from vidmesh_user.settings import Settings

app = service_app(SERVICE, package="vidmesh_user", settings=Settings, build=build_service)

if __name__ == "__main__":
    app()
