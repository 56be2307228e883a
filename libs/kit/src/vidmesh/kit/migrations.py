"""Run a service's Alembic migrations, which live inside its package (``<package>/migrations``)
so ``python -m vidmesh_<service> migrate`` works in an installed image.

A service's ``migrations/env.py`` is two lines: import its ``Base`` and call
:func:`run_migrations` with its metadata.

Alembic (and Mako) are imported when a migration runs, not with this module: every service
imports it for its ``migrate`` command, and a serving process would carry them for nothing
(about 12 MiB).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from vidmesh.kit.db import async_url

if TYPE_CHECKING:
    from alembic.config import Config

FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
"""Date-prefixed revision files, so ``versions/`` lists in the order they were written."""


def alembic_config(package: str, url: str) -> Config:
    """The Alembic config of ``package``'s migrations against the database at ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("file_template", FILE_TEMPLATE)
    # The URL travels as an attribute, not an option: options are interpolated, and a
    # percent-encoded password would break them.
    config.attributes["url"] = url
    return config


def upgrade(package: str, url: str, revision: str = "head") -> None:
    """Migrate up to ``revision``; running it again at head changes nothing."""
    from alembic import command

    command.upgrade(alembic_config(package, url), revision)


def downgrade(package: str, url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(package, url), revision)


async def upgrade_async(package: str, url: str, revision: str = "head") -> None:
    """:func:`upgrade` from inside an event loop (env.py runs its own loop, so: a thread)."""
    await asyncio.to_thread(upgrade, package, url, revision)


async def downgrade_async(package: str, url: str, revision: str = "base") -> None:
    await asyncio.to_thread(downgrade, package, url, revision)


def run_migrations(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``: run the migrations online, over asyncpg."""
    from alembic import context

    url: str = context.config.attributes["url"]
    asyncio.run(_run_online(url, target_metadata))


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync, metadata)
            await connection.commit()
    finally:
        await engine.dispose()


MIGRATION_LOCK = 0x76_69_64_6D_65_73_68  # "vidmesh"
"""The advisory lock key held while migrating: replicas starting together take turns, and the
later ones find the schema at head and change nothing."""


def _run_sync(connection: Connection, metadata: MetaData) -> None:
    from alembic import context  # a proxy, bound only while Alembic runs env.py

    # Held until the migration's transaction commits, so the next replica reads the new head.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def model_differences(url: str, metadata: MetaData) -> list[Any]:
    """What autogenerate would change to make the migrated database at ``url`` match
    ``metadata``: empty when the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def compare(connection: Connection) -> list[Any]:
        migration = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(migration, metadata))

    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()
