"""Every SQL statement of the gateway: the refresh-token table. Flushes, never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vidmesh_api_gateway.models import RefreshToken


class RefreshTokenRepository:
    """Refresh-token rows within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        jti: uuid.UUID,
        family_id: uuid.UUID,
        user_id: str,
        token_hash: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> RefreshToken:
        row = RefreshToken(
            id=jti,
            family_id=family_id,
            user_id=user_id,
            token_hash=token_hash,
            created_at=created_at,
            expires_at=expires_at,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get_for_update(self, jti: uuid.UUID) -> RefreshToken | None:
        """The row with a lock held to the end of the transaction: two concurrent refreshes of
        one token are serialised, so the second sees the first one's ``used_at``."""
        statement = select(RefreshToken).where(RefreshToken.id == jti).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mark_used(self, row: RefreshToken, at: datetime) -> None:
        row.used_at = at
        await self.session.flush()

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        """Revoke every live token of the family; returns how many were live."""
        statement = (
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def family_live(self, family_id: uuid.UUID) -> bool:
        """Whether the family still has a token that is not revoked. Sign-out and reuse revoke
        every token of a family; a purged (long expired) family has none: not live either."""
        statement = (
            select(RefreshToken.id)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .limit(1)
        )
        return (await self.session.execute(statement)).first() is not None

    async def purge_expired(self, before: datetime, batch: int) -> int:
        """Delete up to ``batch`` tokens that expired before ``before``; returns how many."""
        expired = (
            select(RefreshToken.id).where(RefreshToken.expires_at < before).limit(batch)
        ).scalar_subquery()
        statement = (
            delete(RefreshToken)
            .where(RefreshToken.id.in_(expired))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]
