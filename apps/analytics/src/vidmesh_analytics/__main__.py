"""``python -m vidmesh_analytics serve|migrate|health``."""

from __future__ import annotations

from vidmesh.kit.cli import service_app

from vidmesh_analytics.main import SERVICE, build_service
from vidmesh_analytics.settings import Settings

app = service_app(SERVICE, package="vidmesh_analytics", settings=Settings, build=build_service)

if __name__ == "__main__":
    app()
