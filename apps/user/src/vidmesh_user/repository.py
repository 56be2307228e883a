"""Every SQL statement of the user service. Methods take the caller's session and never commit:
the handler owns the transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vidmesh_user.models import User


class UserRepository:
    async def id_by_email(self, session: AsyncSession, email: str) -> uuid.UUID | None:
        return await session.scalar(select(User.id).where(User.email == email))

    async def by_id(self, session: AsyncSession, user_id: uuid.UUID) -> User | None:
        return await session.get(User, user_id)

    async def by_email(self, session: AsyncSession, email: str) -> User | None:
        return await session.scalar(select(User).where(User.email == email))

    async def insert(
        self, session: AsyncSession, *, email: str, password_hash: str
    ) -> uuid.UUID | None:
        """The new user's id, or None when the email is taken. One statement, so two concurrent
        sign-ups with one email cannot both pass a check and then both insert."""
        statement = (
            insert(User)
            .values(id=uuid.uuid4(), email=email, password_hash=password_hash)
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User.id)
        )
        return await session.scalar(statement)

    async def set_password_hash(
        self, session: AsyncSession, user_id: uuid.UUID, password_hash: str
    ) -> None:
        await session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
        )
