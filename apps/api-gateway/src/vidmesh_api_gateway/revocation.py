"""Whether an access token's session is still live: signed out or revoked for reuse, its
access tokens stop working too, not only its refresh tokens.

An access token carries its session's ``family`` (a required claim, so no token predates it).
Each authenticated request asks the gateway's own table, with the answer cached per family for
``session_check_seconds``: one indexed query per session per few seconds, not per request. The
replica that revokes a session forgets its cached answer at once; other replicas within the
cache time.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from vidmesh.kit.db import Database

from vidmesh_api_gateway.errors import Unauthorized
from vidmesh_api_gateway.repository import RefreshTokenRepository

MAX_CACHED_SESSIONS: Final = 100_000
"""Families remembered at once (about 20 MB at most); the oldest answers go first."""


class SessionRevoked(Unauthorized):
    default_message = "The session of this token was signed out or revoked"


class SessionCheck:
    """Live sessions by family id, looked up in the refresh-token table and cached briefly."""

    def __init__(
        self,
        database: Database,
        *,
        cache_seconds: float,
        max_entries: int = MAX_CACHED_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[uuid.UUID, tuple[bool, float]] = OrderedDict()

    async def ensure_live(self, family: uuid.UUID) -> None:
        """Nothing when the session is live; else :class:`SessionRevoked` (a 401)."""
        if not await self.is_live(family):
            raise SessionRevoked()

    async def is_live(self, family: uuid.UUID) -> bool:
        now = self._clock()
        cached = self._cache.get(family)
        if cached is not None and now - cached[1] < self.cache_seconds:
            return cached[0]
        async with self.database.autocommit() as session:
            live = await RefreshTokenRepository(session).family_live(family)
        self._remember(family, live, now)
        return live

    def forget(self, family: uuid.UUID) -> None:
        """This replica revoked ``family``: its next request looks again."""
        self._cache.pop(family, None)

    def _remember(self, family: uuid.UUID, live: bool, at: float) -> None:
        if self.cache_seconds <= 0:
            return
        self._cache[family] = (live, at)
        self._cache.move_to_end(family)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
