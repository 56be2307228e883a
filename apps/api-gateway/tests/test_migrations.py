from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from vidmesh.kit.db import async_url
from vidmesh.kit.migrations import downgrade_async, model_differences, upgrade_async

from vidmesh_api_gateway.models import Base

PACKAGE = "vidmesh_api_gateway"


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_create_what_the_models_declare(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)
    assert "refresh_tokens" in await table_names(fresh_database)
    assert await model_differences(fresh_database, Base.metadata) == []


async def test_upgrading_twice_changes_nothing(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)
    await upgrade_async(PACKAGE, fresh_database)
    assert await model_differences(fresh_database, Base.metadata) == []


async def test_downgrade_to_base_removes_the_tables(fresh_database: str) -> None:
    await upgrade_async(PACKAGE, fresh_database)
    await downgrade_async(PACKAGE, fresh_database)
    assert await table_names(fresh_database) <= {"alembic_version"}
