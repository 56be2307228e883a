"""The user service on a real database: ``database_url`` (migrated once per session),
``service`` (the whole service, built by ``build_service``, on a free port) and ``client``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest
from vidmesh.kit.db import Database
from vidmesh.transport import Microservice, TcpClient, TcpServer

from vidmesh_user.main import build_service
from vidmesh_user.settings import Settings


@pytest.fixture(scope="session")
def database_url(service_database: Callable[[str], str]) -> str:
    return service_database("vidmesh_user")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Microservice]:
    settings = Settings(host="127.0.0.1", port=0, database_url=database_url, tls_enabled=False)
    async with build_service(settings) as service:
        yield service


@pytest.fixture
async def client(service: Microservice) -> AsyncIterator[TcpClient]:
    server = cast(TcpServer, service.transports[0])
    async with TcpClient("127.0.0.1", server.port) as client:
        yield client


@pytest.fixture
def email() -> str:
    """An email no other test uses (tests share the database)."""
    return f"user-{uuid.uuid4().hex}@example.com"
