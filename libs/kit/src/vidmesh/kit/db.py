"""The one engine and session factory of a service, and the unit of work.

Repositories take an ``AsyncSession`` and only flush; the handler opens
``async with database.transaction() as session`` and the transaction commits when the block
ends (or rolls back on an exception).

A pooled connection is pinged before use only when it sat idle for :data:`PING_AFTER_IDLE`:
SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and with asyncpg a ping is three round
trips (BEGIN, an empty query, ROLLBACK), most of the cost of a short transaction. A connection
in steady use proves itself; one that fails in use is a disconnect, and SQLAlchemy then drops
every pooled connection older than it, as it does after a failed ping.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

PING_AFTER_IDLE: Final = 2.0
"""Seconds in the pool after which a connection is pinged before it is handed out."""
_IDLE_SINCE: Final = "vidmesh_idle_since"


def async_url(url: str) -> str:
    """``postgresql://...`` (what libpq tools and the settings use) as SQLAlchemy's asyncpg URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """An async engine on ``url`` and sessions that never expire objects on commit."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        application_name: str = "vidmesh",
    ) -> None:
        """``pool_size`` connections stay open; up to ``max_overflow`` more (default: as many
        again) open under load and close when returned."""
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            connect_args={"server_settings": {"application_name": application_name}},
            # A failed statement's error names its SQL, never its values (emails, hashes...).
            hide_parameters=True,
        )
        _ping_idle_connections(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed at the end, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose every statement is a transaction of its own, committed (durably)
        before it returns. For reads that need no snapshot across statements, and for a single
        write: it saves :meth:`transaction`'s BEGIN and COMMIT round trips."""
        async with self._autocommit_sessions() as session:
            yield session

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, service: object) -> AsyncIterator[None]:
        """A ``Microservice`` lifespan for a service whose only resource is this database:
        the pool is closed when the service stops."""
        try:
            yield
        finally:
            await self.close()


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """``pool_pre_ping``, but only for connections idle for :data:`PING_AFTER_IDLE` or more."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _idle_from_now(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)  # None for a new connection
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # As a failed pre-ping does: the pool drops its older connections and hands out a
            # new one.
            raise exc.InvalidatePoolError(str(error)) from error
