"""A real PostgreSQL: the embedded 18.x server, the role/database helper, the env override."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from vidmesh.devstack.databases import (
    create_database,
    create_role_and_database,
    drop_database,
    url_for,
)
from vidmesh.devstack.postgres import (
    POSTGRES_URL_ENV,
    EmbeddedPostgres,
    PostgresError,
    postgres_from_env_or_embedded,
)

EXTERNAL_PG15 = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _postgres_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "postgres"]


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own, embedded whatever VIDMESH_POSTGRES_URL says."""
    with EmbeddedPostgres(fsync=False) as server:
        yield server


async def test_embedded_server_is_postgres_18_over_tcp(embedded: EmbeddedPostgres) -> None:
    assert embedded.url == f"postgresql://postgres@127.0.0.1:{embedded.port}/postgres"
    version = await _fetchval(embedded.url, "select version()")
    assert isinstance(version, str)
    assert version.startswith("PostgreSQL 18.")
    assert await _fetchval(embedded.url, "select inet_server_addr()::text") == "127.0.0.1/32"
    assert await _fetchval(embedded.url, "show listen_addresses") == "127.0.0.1"
    assert await _fetchval(embedded.url, "select current_user") == "postgres"
    assert await _fetchval(embedded.url, "show server_encoding") == "UTF8"
    # the unix socket is in the data folder
    assert (embedded.data_dir / f".s.PGSQL.{embedded.port}").is_socket()


def test_a_data_folder_in_use_is_refused(embedded: EmbeddedPostgres) -> None:
    with pytest.raises(PostgresError, match=f"pid {embedded.pid}"):
        EmbeddedPostgres(embedded.data_dir).start()
    assert embedded.running


async def test_role_owns_its_database_and_no_other(postgres_url: str) -> None:
    """Each service role connects to its own database and is refused another's."""
    a, b = _name("svc_a"), _name("svc_b")
    password_a = "p@ss:w'rd/%a"  # needs quoting in SQL and percent-encoding in the URL
    try:
        url_a = await create_role_and_database(postgres_url, a, password_a)
        url_b = await create_role_and_database(postgres_url, b, "secret-b")
        assert await _fetchval(url_a, "select current_user || '@' || current_database()") == (
            f"{a}@{a}"
        )
        assert await _fetchval(url_b, "select current_database()") == b
        powers = "select rolsuper or rolcreatedb or rolcreaterole from pg_roles where rolname = $1"
        assert await _fetchval(url_a, powers.replace("$1", f"'{a}'")) is False
        for url, other in ((url_a, b), (url_b, a)):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await _fetchval(url_for(url, database=other), "select 1")
        # the owner may create tables in its database; a second call changes nothing
        assert await create_role_and_database(postgres_url, a, password_a) == url_a
        conn = await asyncpg.connect(url_a)
        try:
            await conn.execute("create table t (id int primary key)")
            await conn.execute("insert into t values (1)")
        finally:
            await conn.close()
    finally:
        await drop_database(postgres_url, a, role=True)
        await drop_database(postgres_url, b, role=True)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await _fetchval(url_for(postgres_url, database=a), "select 1")


async def test_embedded_checks_service_passwords(embedded: EmbeddedPostgres) -> None:
    name = _name("svc")
    url = await create_role_and_database(embedded.url, name, "right")
    try:
        assert await _fetchval(url, "select 1") == 1
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _fetchval(url_for(url, password="wrong"), "select 1")
    finally:
        await drop_database(embedded.url, name, role=True)


async def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "postgres"
    first = EmbeddedPostgres(data_dir)
    with first:
        assert first.initialized_cluster
        conn = await asyncpg.connect(first.url)
        try:
            await conn.execute("create table kept (note text)")
            await conn.execute("insert into kept values ('still here')")
        finally:
            await conn.close()
        pid = first.pid
    assert not first.running
    assert not psutil.pid_exists(pid)
    assert (data_dir / "PG_VERSION").read_text().strip() == "18"
    assert not (data_dir / "postmaster.pid").exists()  # a clean shutdown

    with EmbeddedPostgres(data_dir) as second:
        assert not second.initialized_cluster
        assert await _fetchval(second.url, "select note from kept") == "still here"


async def test_create_and_drop_database(postgres_url: str) -> None:
    name = _name("db")
    url = await create_database(postgres_url, name)
    assert url == url_for(postgres_url, database=name)
    assert await _fetchval(url, "select current_database()") == name
    conn = await asyncpg.connect(url)  # dropping ends this session (WITH (FORCE))
    try:
        await drop_database(postgres_url, name)
        exists = await _fetchval(
            postgres_url, f"select count(*) from pg_database where datname = '{name}'"
        )
        assert exists == 0
    finally:
        await conn.close()


async def test_fresh_database_fixture(fresh_database: str) -> None:
    name = await _fetchval(fresh_database, "select current_database()")
    assert isinstance(name, str)
    assert name.startswith("test_test_fresh_database_fixture_")
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("create table t (id int)")
        assert await conn.fetchval("select count(*) from t") == 0
    finally:
        await conn.close()


async def test_env_var_points_at_an_external_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """VIDMESH_POSTGRES_URL (here this machine's PostgreSQL 15) is used and nothing starts."""
    try:
        await _fetchval(EXTERNAL_PG15, "select 1")
    except OSError as error:
        # This kind of machine (and CI, which runs on it) serves PostgreSQL 15 there; a missing
        # server is a broken environment, not a reason to pass.
        pytest.fail(
            f"no PostgreSQL at {EXTERNAL_PG15} ({error}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect 15 main start'"
        )
    monkeypatch.setenv(POSTGRES_URL_ENV, EXTERNAL_PG15)
    before = {p.pid for p in _postgres_children()}
    with postgres_from_env_or_embedded() as url:
        assert url == EXTERNAL_PG15
        assert {p.pid for p in _postgres_children()} == before
        version = await _fetchval(url, "show server_version_num")
        assert isinstance(version, str)
        assert 150000 <= int(version) < 160000
        a, b = _name("svc_env_a"), _name("svc_env_b")
        try:
            url_a = await create_role_and_database(url, a, "pw-a")
            url_b = await create_role_and_database(url, b, "pw-b")
            assert await _fetchval(url_a, "select current_user || '@' || current_database()") == (
                f"{a}@{a}"
            )
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await _fetchval(url_for(url_a, database=b), "select 1")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await _fetchval(url_for(url_b, database=a), "select 1")
        finally:
            await drop_database(url, a, role=True)
            await drop_database(url, b, role=True)


def test_without_env_var_an_embedded_server_runs_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    before = {p.pid for p in _postgres_children()}
    with postgres_from_env_or_embedded(fsync=False) as url:
        started = [p for p in _postgres_children() if p.pid not in before]
        assert started
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as embedded_postgres
            assert {p.username() for p in started} == {"embedded_postgres"}
    assert not any(p.is_running() for p in started)


def test_url_for_keeps_what_it_is_not_told_to_change() -> None:
    base = "postgresql://admin:s%40lt@db.example:6543/postgres?sslmode=disable"
    assert url_for(base, database="x") == (
        "postgresql://admin:s%40lt@db.example:6543/x?sslmode=disable"
    )
    assert url_for(base, user="u", password="a b/c") == (
        "postgresql://u:a%20b%2Fc@db.example:6543/postgres?sslmode=disable"
    )
    assert url_for("postgresql://postgres@[::1]:5432/postgres", user="v") == (
        "postgresql://v@[::1]:5432/postgres"
    )
