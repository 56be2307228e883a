"""A role and a database per service, the way the tutorial's ``createuser``/``createdb`` do it.

Each service gets a LOGIN role with a password and a database it owns; ``CONNECT`` is revoked
from PUBLIC, so no other service's role can open it.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import asyncpg

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_-]{0,62}")


def check_identifier(name: str) -> str:
    """Role and database names: lower-case letters, digits, ``_`` and ``-`` (the tutorial's
    ``user-service``), at most 63 bytes, starting with a letter or ``_``. Statements quote them
    with ``%I``."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid role or database name ([a-z_][a-z0-9_-]{{,62}})")
    return name


def url_for(
    url: str,
    *,
    database: str | None = None,
    user: str | None = None,
    password: str | None = None,
) -> str:
    """``url`` with another database, user or password (percent-encoded); the rest is kept."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username if user is None else urllib.parse.quote(user, safe="")
    if password is None and user == parts.username:
        password = parts.password
    elif password is not None:
        password = urllib.parse.quote(password, safe="")
    userinfo = ""
    if user:
        userinfo = f"{user}:{password}@" if password else f"{user}@"
    path = parts.path if database is None else "/" + urllib.parse.quote(database, safe="")
    return urllib.parse.urlunsplit((parts.scheme, userinfo + host, path, parts.query, ""))


async def _execute_formatted(conn: Any, template: str, *args: str) -> None:
    """Run a utility statement built by the server's ``format()``: ``%I`` quotes identifiers and
    ``%L`` literals, since utility statements (CREATE ROLE...) take no bind parameters."""
    casts = ", ".join(f"${i}::text" for i in range(1, len(args) + 1))
    statement = await conn.fetchval(f"SELECT format('{template}', {casts})", *args)
    await conn.execute(statement)


async def create_role_and_database(admin_url: str, name: str, password: str) -> str:
    """Make the role ``name`` (LOGIN, this password, no other powers) and the database ``name``
    owned by it, with ``CONNECT`` and ``TEMPORARY`` revoked from ``PUBLIC``: only that role (and
    superusers) can connect to it. Idempotent: an existing role gets the password again, an
    existing database the owner. Returns the service's URL (``admin_url`` with that user,
    password and database)."""
    check_identifier(name)
    conn = await asyncpg.connect(admin_url)
    try:
        role_exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        verb = "ALTER" if role_exists else "CREATE"
        await _execute_formatted(
            conn,
            f"{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L",
            name,
            password,
        )
        db_exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if db_exists:
            await _execute_formatted(conn, "ALTER DATABASE %I OWNER TO %I", name, name)
        else:
            await _execute_formatted(conn, "CREATE DATABASE %I OWNER %I", name, name)
        await _execute_formatted(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", name)
    finally:
        await conn.close()
    return url_for(admin_url, database=name, user=name, password=password)


async def create_database(admin_url: str, name: str) -> str:
    """A new database ``name`` owned by the admin user; returns ``admin_url`` pointing at it."""
    check_identifier(name)
    conn = await asyncpg.connect(admin_url)
    try:
        await _execute_formatted(conn, "CREATE DATABASE %I", name)
    finally:
        await conn.close()
    return url_for(admin_url, database=name)


async def drop_database(admin_url: str, name: str, *, role: bool = False) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (its sessions are ended), and the role of
    the same name too when ``role`` is true."""
    check_identifier(name)
    conn = await asyncpg.connect(admin_url)
    try:
        await _execute_formatted(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)
        if role:
            await _execute_formatted(conn, "DROP ROLE IF EXISTS %I", name)
    finally:
        await conn.close()
