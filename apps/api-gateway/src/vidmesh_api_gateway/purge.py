"""Housekeeping: expired refresh tokens leave the gateway's table on a schedule.

An expired token can neither refresh nor be reused, and the access tokens of its family expired
long before (an access token lives minutes, a refresh token days), so its row only takes room.
Every replica runs the loop; a ``DELETE`` of rows another replica already deleted costs nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

import structlog
from vidmesh.kit.db import Database

from vidmesh_api_gateway.repository import RefreshTokenRepository

logger = structlog.get_logger("vidmesh_api_gateway.purge")

BATCH: Final = 5_000
"""Rows per DELETE: one short transaction each, so a large backlog never holds long locks."""


async def purge_expired_tokens(database: Database, *, batch: int = BATCH) -> int:
    """Delete every refresh token expired by now, ``batch`` rows per transaction; how many."""
    now = datetime.now(UTC)
    total = 0
    while True:
        async with database.transaction() as session:
            deleted = await RefreshTokenRepository(session).purge_expired(now, batch)
        total += deleted
        if deleted < batch:
            return total


async def purge_forever(database: Database, interval: float) -> None:
    """Purge now, then every ``interval`` seconds until cancelled; a failed purge (the
    database away) is logged and tried again at the next tick."""
    while True:
        try:
            purged = await purge_expired_tokens(database)
        except Exception as error:  # keep the schedule whatever one run met
            logger.warning("refresh_token_purge_failed", error=str(error))
        else:
            if purged:
                logger.info("refresh_tokens_purged", count=purged)
        await asyncio.sleep(interval)
