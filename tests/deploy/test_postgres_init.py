"""deploy/postgres/init-databases.sh run by psql, as the postgres image runs it, against a real
PostgreSQL 18 of its own (the image's major version): the roles and databases it makes, their
owners, their passwords, and that no role can open another service's database.

psql 15 or newer (the script uses its getenv command) comes with the machine. The server is a
throwaway one because the script makes the tutorial's fixed names (``user-service``...),
which the session's shared server must not be given.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.parse
from collections.abc import Iterator

import asyncpg
import pytest
from vidmesh.devstack.databases import url_for
from vidmesh.devstack.postgres import EmbeddedPostgres

from tests.deploy.services import INIT_SCRIPT, SERVICES, Service, each_service


def run_init_script(admin_url: str, passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script under ``sh``, with the server named by PG* variables, as outside the image."""
    parts = urllib.parse.urlsplit(admin_url)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env |= {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port),
        "PGUSER": parts.username or "postgres",
        "PGDATABASE": parts.path.lstrip("/"),
        **passwords,
    }
    return subprocess.run(
        ["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with EmbeddedPostgres(fsync=False) as postgres:
        yield postgres.url


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    # one with characters that need quoting in SQL, to show psql quotes them
    values = {service.password_var: secrets.token_hex(12) for service in SERVICES}
    values["USER_DB_PASSWORD"] = 'it\'s a "quoted" pass; DROP ROLE postgres'
    return values


@pytest.fixture(scope="module")
def initialized(server: str, passwords: dict[str, str]) -> str:
    result = run_init_script(server, passwords)
    assert result.returncode == 0, result.stderr
    return server


def service_url(server: str, service: Service, passwords: dict[str, str], database: str) -> str:
    return url_for(
        server, database=database, user=service.database, password=passwords[service.password_var]
    )


async def test_script_makes_one_role_and_one_database_per_service(initialized: str) -> None:
    conn = await asyncpg.connect(initialized)
    try:
        rows = await conn.fetch(
            "SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, r.rolcanlogin, r.rolsuper,"
            " r.rolcreatedb, r.rolcreaterole FROM pg_database d JOIN pg_roles r"
            " ON r.rolname = d.datname WHERE NOT d.datistemplate AND d.datname <> 'postgres'"
        )
    finally:
        await conn.close()
    assert {row["datname"] for row in rows} == {service.database for service in SERVICES}
    for row in rows:
        assert row["owner"] == row["datname"]
        assert row["rolcanlogin"]
        powers = [row["rolsuper"], row["rolcreatedb"], row["rolcreaterole"]]
        assert powers == [False, False, False]


@each_service()
async def test_service_role_opens_its_own_database_with_its_password(
    initialized: str, passwords: dict[str, str], service: Service
) -> None:
    conn = await asyncpg.connect(service_url(initialized, service, passwords, service.database))
    try:
        assert await conn.fetchval("SELECT current_user") == service.database
        await conn.execute("CREATE TABLE owned_here (id int)")  # it owns the public schema too
        await conn.execute("DROP TABLE owned_here")
    finally:
        await conn.close()


@each_service()
async def test_service_role_cannot_connect_to_another_service_database(
    initialized: str, passwords: dict[str, str], service: Service
) -> None:
    for other in SERVICES:
        if other is service:
            continue
        url = service_url(initialized, service, passwords, other.database)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await asyncpg.connect(url)


async def test_wrong_password_is_refused(initialized: str, passwords: dict[str, str]) -> None:
    service = SERVICES[0]
    url = url_for(initialized, database=service.database, user=service.database, password="wrong")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(url)


async def test_running_the_script_again_changes_nothing_but_passwords(
    initialized: str, passwords: dict[str, str]
) -> None:
    rotated = {**passwords, "VIDEO_DB_PASSWORD": secrets.token_hex(12)}
    result = run_init_script(initialized, rotated)
    assert result.returncode == 0, result.stderr
    video = next(s for s in SERVICES if s.name == "video")
    conn = await asyncpg.connect(service_url(initialized, video, rotated, video.database))
    await conn.close()
    assert run_init_script(initialized, passwords).returncode == 0  # back, for the other tests


def test_script_refuses_to_run_without_every_password(server: str) -> None:
    passwords = {service.password_var: "x" for service in SERVICES[1:]}
    result = run_init_script(server, passwords)
    assert result.returncode != 0
    assert f"{SERVICES[0].password_var} is not set" in result.stderr
