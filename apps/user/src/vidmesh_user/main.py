"""The composition root: settings -> database -> repository -> handlers -> Microservice."""

from __future__ import annotations

from vidmesh.kit.db import Database
from vidmesh.kit.health import health_router
from vidmesh.kit.tls import tcp_server
from vidmesh.transport import Microservice

from vidmesh_user.handlers import UserHandlers, build_router
from vidmesh_user.repository import UserRepository
from vidmesh_user.security import Passwords
from vidmesh_user.settings import Settings

SERVICE = "user"


def build_service(settings: Settings) -> Microservice:
    """The user service over TCP, ready to ``run()`` (or start in a test)."""
    database = Database(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        application_name=f"vidmesh-{SERVICE}",
    )
    handlers = UserHandlers(database, UserRepository(), Passwords())
    router = build_router(handlers)
    router.include_router(health_router(SERVICE, {"database": database.ping}))

    return Microservice(
        SERVICE,
        router,
        transports=[tcp_server(settings, SERVICE)],
        lifespan=database.lifespan,
        drain_timeout=settings.drain_timeout,
    )
