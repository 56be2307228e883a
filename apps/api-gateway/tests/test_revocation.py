"""Access tokens die with their session (sign-out, reuse), a replica's cached answer lasts
``session_check_seconds`` at most, and expired refresh tokens are purged on a schedule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from vidmesh.kit.db import Database

from vidmesh_api_gateway.models import RefreshToken
from vidmesh_api_gateway.purge import purge_expired_tokens, purge_forever
from vidmesh_api_gateway.repository import RefreshTokenRepository
from vidmesh_api_gateway.revocation import SessionCheck
from vidmesh_api_gateway.security import RefreshSessions, TokenCodec


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def authenticated_status(http: httpx.AsyncClient, access_token: str) -> int:
    """A route behind the access token: a live token gets past the check (to a 503 here:
    the video service is not running) and a dead one stops at 401."""
    answer = await http.get(f"/api/videos/uploads/{uuid.uuid4()}", headers=bearer(access_token))
    return answer.status_code


async def test_access_token_is_401_after_signout(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    assert await authenticated_status(http, pair.access_token) == 503
    assert (await http.post("/api/auth/signout", headers=bearer(pair.refresh_token))).is_success
    assert await authenticated_status(http, pair.access_token) == 401


async def test_access_token_is_401_after_its_family_is_revoked_for_reuse(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    rotated = await http.post("/api/auth/refresh", headers=bearer(pair.refresh_token))
    new_access = rotated.json()["accessToken"]
    assert await authenticated_status(http, new_access) == 503
    reused = await http.post("/api/auth/refresh", headers=bearer(pair.refresh_token))
    assert reused.status_code == 401
    assert await authenticated_status(http, new_access) == 401
    assert await authenticated_status(http, pair.access_token) == 401


async def test_a_replica_trusts_its_cached_answer_only_for_the_cache_time(
    database: Database, codec: TokenCodec
) -> None:
    now = [1000.0]
    check = SessionCheck(database, cache_seconds=5.0, clock=lambda: now[0])
    other_replica = RefreshSessions(database, codec)  # revokes without telling `check`
    pair = await other_replica.start(str(uuid.uuid4()))
    family = pair.refresh_claims.family
    assert await check.is_live(family)
    await other_replica.revoke(pair.refresh_token)
    now[0] += 4.9
    assert await check.is_live(family)  # cached
    now[0] += 0.2
    assert not await check.is_live(family)


async def test_the_revoking_replica_forgets_its_cached_answer_at_once(
    database: Database, codec: TokenCodec
) -> None:
    check = SessionCheck(database, cache_seconds=3600.0)
    sessions = RefreshSessions(database, codec, check)
    pair = await sessions.start(str(uuid.uuid4()))
    assert await check.is_live(pair.refresh_claims.family)
    await sessions.revoke(pair.refresh_token)
    assert not await check.is_live(pair.refresh_claims.family)


async def test_an_unknown_family_is_not_live(database: Database) -> None:
    assert not await SessionCheck(database, cache_seconds=0).is_live(uuid.uuid4())


async def add_token(database: Database, expires_at: datetime) -> uuid.UUID:
    jti = uuid.uuid4()
    async with database.transaction() as session:
        await RefreshTokenRepository(session).add(
            jti=jti,
            family_id=uuid.uuid4(),
            user_id=str(uuid.uuid4()),
            token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
            created_at=expires_at - timedelta(days=30),
            expires_at=expires_at,
        )
    return jti


async def existing(database: Database, *ids: uuid.UUID) -> set[uuid.UUID]:
    async with database.autocommit() as session:
        rows = await session.execute(select(RefreshToken.id).where(RefreshToken.id.in_(ids)))
    return set(rows.scalars())


async def test_purge_deletes_expired_tokens_in_batches_and_keeps_live_ones(
    database: Database,
) -> None:
    now = datetime.now(UTC)
    expired = [await add_token(database, now - timedelta(seconds=index + 1)) for index in range(5)]
    live = await add_token(database, now + timedelta(hours=1))
    assert await purge_expired_tokens(database, batch=2) >= 5
    assert await existing(database, *expired, live) == {live}


async def test_the_purge_runs_on_its_schedule(database: Database) -> None:
    task = asyncio.create_task(purge_forever(database, interval=0.05))
    try:
        await asyncio.sleep(0.1)
        expired = await add_token(database, datetime.now(UTC) - timedelta(seconds=1))
        for _ in range(100):
            if not await existing(database, expired):
                break
            await asyncio.sleep(0.05)
        assert not await existing(database, expired)
    finally:
        task.cancel()
