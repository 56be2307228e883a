"""pytest fixtures for a real PostgreSQL, a real Kafka-protocol broker and a real S3 store.

Enable with ``pytest_plugins = ["vidmesh.devstack.pytest_plugin"]`` in the root ``conftest.py``.
Fixtures are lazy: a server starts when the first test of the session asks for it, and stops at
the end of the session. Set ``VIDMESH_POSTGRES_URL`` (a superuser URL),
``VIDMESH_KAFKA_BOOTSTRAP`` (``host:port``) or ``VIDMESH_S3_ENDPOINT`` (with
``VIDMESH_S3_ACCESS_KEY_ID``, ``VIDMESH_S3_SECRET_ACCESS_KEY`` and optionally
``VIDMESH_S3_REGION``) to use an existing server instead.

Session: ``postgres_url`` (superuser URL), ``kafka_bootstrap`` (``host:port``), ``object_store``
(an ``ObjectStore``: endpoint, region, access_key_id, secret_access_key).
Session: ``service_database`` (a factory: a role and a migrated database for a service package).
Per test: ``fresh_database`` (URL of a new database, dropped afterwards), ``unique_topic`` (a
new topic with one partition), ``unique_group`` (a new consumer group id), ``unique_bucket`` (a
bucket name no other test uses, the bucket deleted afterwards).

The server modules (with asyncpg, aiokafka and botocore) are imported by the fixtures that need
them: loading this plugin costs a test run that uses none of them nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vidmesh.devstack.s3 import ObjectStore


def unique_name(request: pytest.FixtureRequest, prefix: str, *, max_len: int = 63) -> str:
    """``<prefix>_<test name>_<8 hex>``: lower-case letters, digits and ``_`` only, so it is a
    valid database name, topic name and group id, and points back at its test."""
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    suffix = uuid.uuid4().hex[:8]
    room = max_len - len(prefix) - len(suffix) - 2
    return f"{prefix}_{test[:room]}_{suffix}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Superuser URL of a PostgreSQL server: ``$VIDMESH_POSTGRES_URL``, or an embedded
    PostgreSQL 18 in a temporary folder, with fsync off, for the whole session."""
    from vidmesh.devstack.postgres import postgres_from_env_or_embedded

    with postgres_from_env_or_embedded(fsync=False) as url:
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a Kafka-protocol broker: ``$VIDMESH_KAFKA_BOOTSTRAP``, or an
    embedded in-memory tansu for the whole session."""
    from vidmesh.devstack.broker import kafka_from_env_or_embedded

    with kafka_from_env_or_embedded() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    """An S3 store: the one named by ``$VIDMESH_S3_ENDPOINT`` (and its keys), or an embedded
    SeaweedFS in a temporary folder for the whole session."""
    from vidmesh.devstack.objectstore import store_from_env_or_embedded

    with store_from_env_or_embedded() as store:
        yield store


@pytest.fixture
def unique_bucket(object_store: ObjectStore, request: pytest.FixtureRequest) -> Iterator[str]:
    """A bucket name no other test uses (``test-<test name>-<8 hex>``); the code under test
    creates the bucket. Whatever it left there is deleted after the test, with the bucket."""
    from vidmesh.devstack.s3 import bucket_name, delete_bucket

    name = bucket_name(unique_name(request, "test"))
    yield name
    delete_bucket(object_store, name)


@pytest.fixture
async def fresh_database(postgres_url: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Superuser URL of a database made for this test and dropped (``WITH (FORCE)``) after."""
    from vidmesh.devstack.databases import create_database, drop_database

    name = unique_name(request, "test")
    url = await create_database(postgres_url, name)
    try:
        yield url
    finally:
        await drop_database(postgres_url, name)


@pytest.fixture
async def unique_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> str:
    """A topic made for this test, with one partition (so its messages keep their order).
    For another layout, call ``create_topics`` with a name from ``unique_name``."""
    from vidmesh.transport.kafka.admin import create_topics

    name = unique_name(request, "test", max_len=200)
    await create_topics(kafka_bootstrap, [name], partitions=1)
    return name


@pytest.fixture
def unique_group(request: pytest.FixtureRequest) -> str:
    """A consumer group id no other test uses."""
    return unique_name(request, "group", max_len=200)


ServiceDatabase = Callable[[str], str]
"""``service_database("vidmesh_user")`` -> the URL of that service's own role and database."""


@pytest.fixture(scope="session")
def service_database(postgres_url: str) -> Iterator[ServiceDatabase]:
    """A factory: for a service package, a role and a database of its own (made the way
    ``vidmesh up`` makes them) migrated to head, once per session; returns the service's URL.
    Tests keep apart by their data (new ids and emails), not by database."""
    import asyncio

    from vidmesh.devstack.databases import create_role_and_database, drop_database
    from vidmesh.kit.migrations import upgrade

    urls: dict[str, str] = {}
    names: list[str] = []

    def get(package: str) -> str:
        if package not in urls:
            name = f"test_{package}_{uuid.uuid4().hex[:8]}"
            url = asyncio.run(create_role_and_database(postgres_url, name, uuid.uuid4().hex))
            names.append(name)
            upgrade(package, url)
            urls[package] = url
        return urls[package]

    yield get
    for name in names:
        asyncio.run(drop_database(postgres_url, name, role=True))
