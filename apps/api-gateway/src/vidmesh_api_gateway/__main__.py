"""``python -m vidmesh_api_gateway serve|migrate|health``."""

from __future__ import annotations

import urllib.error
import urllib.request

from vidmesh.kit.cli import service_app

from vidmesh_api_gateway.main import SERVICE_NAME, build_service
from vidmesh_api_gateway.settings import Settings

HEALTH_TIMEOUT = 3.0


def health(settings: Settings) -> bool:
    """GET /healthz on the gateway's own port: true on a 200."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    url = f"http://{host}:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


app = service_app(
    SERVICE_NAME,
    package="vidmesh_api_gateway",
    settings=Settings,
    build=build_service,
    health=health,
)

if __name__ == "__main__":
    app()
