"""The three commands every service has: ``serve``, ``migrate`` and ``health``.

``python -m vidmesh_<service> serve`` runs the service until SIGINT/SIGTERM;
``python -m vidmesh_<service> migrate`` brings its database to the newest schema (idempotent);
``python -m vidmesh_<service> health`` exits 0 when the running service answers its health
check (a container's HEALTHCHECK, a supervisor's readiness probe).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from vidmesh.contracts import HEALTH, Health
from vidmesh.kit.logging import configure_logging
from vidmesh.kit.migrations import upgrade
from vidmesh.kit.settings import ServiceSettings
from vidmesh.kit.tls import client_ssl
from vidmesh.transport import ClientOptions, Microservice, TcpClient, TransportError

S = TypeVar("S", bound=ServiceSettings)


def service_app(
    name: str,
    *,
    package: str,
    settings: Callable[[], S],
    build: Callable[[S], Microservice],
    health: Callable[[S], bool] | None = None,
    migrate: Callable[[S], None] | None = None,
) -> typer.Typer:
    """A service's ``__main__``: settings read from the environment once per command, logging
    set up, then ``build(settings).run()``, ``migrate`` (default: ``package``'s migrations;
    a service whose upgrade does more than SQL gives its own), or ``health`` (default: the
    health pattern on the service's own TCP port)."""

    def load() -> S:
        try:
            loaded = settings()
        except ValidationError as error:  # a clear line per setting, not a traceback
            raise SystemExit(settings_error(name, error, _env_prefix(settings))) from None
        configure_logging(name, level=loaded.log_level, log_format=loaded.log_format)
        return loaded

    def serve() -> None:
        build(load()).run()

    def migrate_all() -> None:
        loaded = load()
        if migrate is not None:
            migrate(loaded)
        else:
            upgrade(package, loaded.database_url.get_secret_value())

    def check() -> bool:
        loaded = settings()
        if health is not None:
            return health(loaded)
        # With mutual TLS the command presents the service's own certificate, which it admits.
        context = client_ssl(loaded)
        return tcp_health(loaded.host, loaded.port, ssl_context=context, server_hostname=name)

    return service_cli(name, serve=serve, migrate=migrate_all, health=check)


def settings_error(name: str, error: ValidationError, env_prefix: str) -> str:
    """Why ``name`` refuses to start, one line per setting, each named by its environment
    variable. The values are never shown (``ServiceSettings`` hides them from its errors)."""
    lines = [f"{name}: refusing to start, invalid settings:"]
    for problem in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in problem["loc"])
        variable = (env_prefix + field).upper() if field else env_prefix.rstrip("_")
        lines.append(f"  {variable}: {problem['msg']}")
    return "\n".join(lines)


def _env_prefix(settings: Callable[[], ServiceSettings]) -> str:
    config = getattr(settings, "model_config", {})
    return str(config.get("env_prefix", ""))


def service_cli(
    name: str,
    *,
    serve: Callable[[], None],
    migrate: Callable[[], None],
    health: Callable[[], bool],
) -> typer.Typer:
    """A Typer app with the three commands bound to one service's functions."""
    app = typer.Typer(name=name, help=f"The vidmesh {name} service.", add_completion=False)
    app.command("serve", help=f"Run the {name} service until SIGINT or SIGTERM.")(serve)
    app.command("migrate", help=f"Migrate the {name} database to the newest schema.")(migrate)

    @app.command("health", help=f"Exit 0 when the running {name} service is healthy.")
    def check_health() -> None:
        if not health():
            raise typer.Exit(1)

    return app


def tcp_health(
    host: str,
    port: int,
    timeout: float = 3.0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> bool:
    """True when the TCP service at ``host:port`` answers the health pattern with ok."""
    if host in ("0.0.0.0", "::", ""):  # a bind-all address: ask over loopback
        host = "127.0.0.1"
    return asyncio.run(_ask_health(host, port, timeout, ssl_context, server_hostname))


async def _ask_health(
    host: str,
    port: int,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> bool:
    options = ClientOptions(request_timeout=timeout, connect_attempts=1)
    client = TcpClient(
        host, port, options=options, ssl_context=ssl_context, server_hostname=server_hostname
    )
    try:
        async with client:
            answer = Health.model_validate(await client.send(HEALTH))
    except (TransportError, OSError, ValueError):
        return False
    return answer.ok
