"""The user repository on the real database: inserts that refuse a taken email, lookups."""

from __future__ import annotations

import asyncio
import uuid

from vidmesh.kit.db import Database

from vidmesh_user.repository import UserRepository

users = UserRepository()


async def test_insert_returns_a_new_id_that_the_lookups_find(
    database: Database, email: str
) -> None:
    async with database.transaction() as session:
        user_id = await users.insert(session, email=email, password_hash="h")

    assert user_id is not None
    async with database.transaction() as session:
        assert await users.id_by_email(session, email) == user_id
        by_id = await users.by_id(session, user_id)
        by_email = await users.by_email(session, email)
    assert by_id is not None
    assert by_email is not None
    assert (by_id.email, by_id.password_hash) == (email, "h")
    assert by_email.id == user_id
    assert by_id.created_at == by_id.updated_at


async def test_insert_of_a_taken_email_returns_none_and_keeps_the_first_user(
    database: Database, email: str
) -> None:
    async with database.transaction() as session:
        first = await users.insert(session, email=email, password_hash="first")
    async with database.transaction() as session:
        assert await users.insert(session, email=email, password_hash="second") is None
        user = await users.by_email(session, email)

    assert user is not None
    assert (user.id, user.password_hash) == (first, "first")


async def test_concurrent_inserts_of_one_email_make_one_row(database: Database, email: str) -> None:
    async def insert() -> uuid.UUID | None:
        async with database.transaction() as session:
            user_id = await users.insert(session, email=email, password_hash="h")
            await asyncio.sleep(0.05)  # hold the transaction: the others wait on its row
            return user_id

    results = await asyncio.gather(*(insert() for _ in range(4)))

    assert sum(result is not None for result in results) == 1


async def test_lookups_of_unknown_users_return_none(database: Database, email: str) -> None:
    async with database.transaction() as session:
        assert await users.id_by_email(session, email) is None
        assert await users.by_email(session, email) is None
        assert await users.by_id(session, uuid.uuid4()) is None


async def test_set_password_hash_replaces_the_hash_and_moves_updated_at(
    database: Database, email: str
) -> None:
    async with database.transaction() as session:
        user_id = await users.insert(session, email=email, password_hash="old")
    assert user_id is not None

    async with database.transaction() as session:
        await users.set_password_hash(session, user_id, "new")
    async with database.transaction() as session:
        user = await users.by_id(session, user_id)

    assert user is not None
    assert user.password_hash == "new"
    assert user.updated_at > user.created_at
