"""``python -m vidmesh_api_gateway serve|migrate|health``."""

from __future__ import annotations

import urllib.error
import urllib.request

from vidmesh.kit.cli import service_cli
from vidmesh.kit.logging import configure_logging
from vidmesh.kit.migrations import upgrade

from vidmesh_api_gateway.main import SERVICE_NAME, build_service
from vidmesh_api_gateway.settings import Settings

HEALTH_TIMEOUT = 3.0


def serve() -> None:
    settings = Settings()
    configure_logging(SERVICE_NAME, level=settings.log_level, log_format=settings.log_format)
    build_service(settings).run()


def migrate() -> None:
    settings = Settings()
    configure_logging(SERVICE_NAME, level=settings.log_level, log_format=settings.log_format)
    upgrade("vidmesh_api_gateway", settings.database_url.get_secret_value())


def health() -> bool:
    """GET /healthz on the gateway's own port: true on a 200."""
    settings = Settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    url = f"http://{host}:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


app = service_cli(SERVICE_NAME, serve=serve, migrate=migrate, health=health)

if __name__ == "__main__":
    app()
