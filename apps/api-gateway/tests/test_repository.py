"""Refresh tokens in the real database: the repository, and rotation with reuse detection."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from vidmesh.kit.db import Database

from vidmesh_api_gateway.models import RefreshToken
from vidmesh_api_gateway.repository import RefreshTokenRepository
from vidmesh_api_gateway.security import (
    InvalidToken,
    RefreshSessions,
    TokenCodec,
    TokenType,
    token_hash,
)


def new_user() -> str:
    return str(uuid.uuid4())


async def family_rows(database: Database, family: uuid.UUID) -> list[RefreshToken]:
    async with database.transaction() as session:
        statement = select(RefreshToken).where(RefreshToken.family_id == family)
        return list((await session.execute(statement)).scalars())


async def test_repository_adds_and_locks_a_row(database: Database) -> None:
    jti, family, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    async with database.transaction() as session:
        repository = RefreshTokenRepository(session)
        await repository.add(
            jti=jti,
            family_id=family,
            user_id="u",
            token_hash="h" + jti.hex,
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
    async with database.transaction() as session:
        row = await RefreshTokenRepository(session).get_for_update(jti)
        assert row is not None
        assert (row.family_id, row.user_id, row.used_at, row.revoked_at) == (
            family,
            "u",
            None,
            None,
        )


async def test_repository_revokes_only_the_live_tokens_of_one_family(database: Database) -> None:
    family, other, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    async with database.transaction() as session:
        repository = RefreshTokenRepository(session)
        for family_id in (family, family, other):
            jti = uuid.uuid4()
            await repository.add(
                jti=jti,
                family_id=family_id,
                user_id="u",
                token_hash=jti.hex,
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        assert await repository.revoke_family(family, now) == 2
        assert await repository.revoke_family(family, now) == 0
    assert all(row.revoked_at is None for row in await family_rows(database, other))


async def test_sign_in_stores_only_the_hash_of_the_refresh_token(
    sessions: RefreshSessions, database: Database
) -> None:
    pair = await sessions.start(new_user())
    [row] = await family_rows(database, pair.refresh_claims.family)
    assert row.id == pair.refresh_claims.jti
    assert row.token_hash == token_hash(pair.refresh_token)
    assert pair.refresh_token not in (row.token_hash, str(row.id))


async def test_refresh_rotates_the_token_within_its_family(
    sessions: RefreshSessions, database: Database, codec: TokenCodec
) -> None:
    user = new_user()
    first = await sessions.start(user)
    second = await sessions.rotate(first.refresh_token)
    assert second.refresh_claims.family == first.refresh_claims.family
    assert second.refresh_token != first.refresh_token
    assert codec.verify(second.access_token, TokenType.ACCESS).sub == user
    rows = {row.id: row for row in await family_rows(database, first.refresh_claims.family)}
    assert rows[first.refresh_claims.jti].used_at is not None
    assert rows[second.refresh_claims.jti].used_at is None
    third = await sessions.rotate(second.refresh_token)
    assert third.refresh_claims.family == first.refresh_claims.family


async def test_reuse_of_a_rotated_token_revokes_the_whole_family(
    sessions: RefreshSessions, database: Database
) -> None:
    first = await sessions.start(new_user())
    second = await sessions.rotate(first.refresh_token)
    with pytest.raises(InvalidToken, match="reused"):
        await sessions.rotate(first.refresh_token)
    rows = await family_rows(database, first.refresh_claims.family)
    assert all(row.revoked_at is not None for row in rows)
    with pytest.raises(InvalidToken):
        await sessions.rotate(second.refresh_token)


async def test_reuse_revokes_one_family_and_leaves_the_users_other_sessions(
    sessions: RefreshSessions,
) -> None:
    user = new_user()
    stolen, other = await sessions.start(user), await sessions.start(user)
    await sessions.rotate(stolen.refresh_token)
    with pytest.raises(InvalidToken):
        await sessions.rotate(stolen.refresh_token)
    assert (await sessions.rotate(other.refresh_token)).refresh_claims.family == (
        other.refresh_claims.family
    )


async def test_concurrent_refreshes_of_one_token_let_only_one_through(
    sessions: RefreshSessions,
) -> None:
    pair = await sessions.start(new_user())
    results = await asyncio.gather(
        sessions.rotate(pair.refresh_token),
        sessions.rotate(pair.refresh_token),
        return_exceptions=True,
    )
    refused = [result for result in results if isinstance(result, InvalidToken)]
    assert len(refused) == 1  # the lock makes the second see the first one's use


async def test_sign_out_revokes_the_family(sessions: RefreshSessions) -> None:
    pair = await sessions.start(new_user())
    await sessions.revoke(pair.refresh_token)
    await sessions.revoke(pair.refresh_token)  # idempotent
    with pytest.raises(InvalidToken):
        await sessions.rotate(pair.refresh_token)


async def test_refresh_token_never_stored_is_refused(
    sessions: RefreshSessions, codec: TokenCodec
) -> None:
    token, _ = codec.issue(new_user(), TokenType.REFRESH, uuid.uuid4())
    with pytest.raises(InvalidToken):
        await sessions.rotate(token)
    with pytest.raises(InvalidToken):
        await sessions.revoke(token)


async def test_access_token_cannot_refresh(sessions: RefreshSessions) -> None:
    pair = await sessions.start(new_user())
    with pytest.raises(InvalidToken):
        await sessions.rotate(pair.access_token)


async def test_refresh_token_whose_row_expired_is_refused(
    sessions: RefreshSessions, database: Database
) -> None:
    pair = await sessions.start(new_user())
    async with database.transaction() as session:
        row = await RefreshTokenRepository(session).get_for_update(pair.refresh_claims.jti)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(InvalidToken):
        await sessions.rotate(pair.refresh_token)
