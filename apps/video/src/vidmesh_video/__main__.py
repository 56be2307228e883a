"""``python -m vidmesh_video serve|migrate|health``."""

from __future__ import annotations

from vidmesh.kit.cli import service_cli, tcp_health
from vidmesh.kit.logging import configure_logging
from vidmesh.kit.migrations import upgrade

from vidmesh_video.main import SERVICE, build_service
from vidmesh_video.settings import Settings


def serve() -> None:
    settings = Settings()
    configure_logging(SERVICE, level=settings.log_level, log_format=settings.log_format)
    build_service(settings).run()


def migrate() -> None:
    settings = Settings()
    configure_logging(SERVICE, level=settings.log_level, log_format=settings.log_format)
    upgrade("vidmesh_video", settings.database_url.get_secret_value())


def health() -> bool:
    settings = Settings()
    return tcp_health(settings.host, settings.port)


app = service_cli(SERVICE, serve=serve, migrate=migrate, health=health)

if __name__ == "__main__":
    app()
