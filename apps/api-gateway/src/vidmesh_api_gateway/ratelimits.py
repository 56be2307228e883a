"""Rate limits at the doors an attacker leans on: sign-in and sign-up (per client address and
per account), refresh (per token family). Past a limit: 429 in the one error shape with
``Retry-After``, and an audit line.

Counters live in a ``limits`` storage (``rate_limit_storage``): in memory for one process
(``vidmesh up``), in Redis or Valkey shared by every replica (Compose, k8s). Sliding-window
counters: no burst of twice the limit across a window's edge, two keys per limit.
Account keys are hashed, so the store holds no email addresses. If the shared store is down the
limits are skipped (logged), not the sign-ins: the store is a guard, not a dependency.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import ClassVar, Final

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from vidmesh_api_gateway import audit
from vidmesh_api_gateway.errors import GatewayError
from vidmesh_api_gateway.settings import Settings

logger = structlog.get_logger("vidmesh_api_gateway.ratelimits")

KEY_PREFIX: Final = "vidmesh-gateway"
STORE_TIMEOUT: Final = 1.0
"""Seconds to connect to, or hear from, a shared store before the limit is skipped."""


class TooManyRequests(GatewayError):
    status_code = 429
    default_message = "Too many requests; try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    """What it counts, in the audit log: ``signin_per_account``..."""
    item: RateLimitItem


def storage_uri(uri: str) -> str:
    """A ``limits`` URI for its asyncio storages: ``redis://h`` -> ``async+redis://h``."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class RateLimits:
    """The gateway's limits over one storage; ``hit`` raises :class:`TooManyRequests`."""

    NAMES: ClassVar = (
        "signin_per_address",
        "signin_per_account",
        "signup_per_address",
        "signup_per_account",
        "refresh_per_family",
    )

    def __init__(self, storage: Storage, limits: dict[str, str]) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.limits = {name: Limit(name, parse(limits[name])) for name in self.NAMES}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        uri = storage_uri(settings.rate_limit_storage.get_secret_value())
        options: dict[str, float | str | bool] = {"wrap_exceptions": True}
        if not uri.startswith("async+memory"):
            options |= {"connect_timeout": STORE_TIMEOUT, "stream_timeout": STORE_TIMEOUT}
            options["key_prefix"] = KEY_PREFIX
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, Storage):
            raise ValueError("rate_limit_storage must name an asyncio storage")
        limits = {
            name: str(getattr(settings, name.replace("_per_", "_limit_per_"))) for name in cls.NAMES
        }
        return cls(storage, limits)

    def close(self) -> None:
        """Drop the shared store's connections (``limits`` has no public close: its Redis
        storage keeps a coredis client whose pool disconnects)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    async def signin(self, *, client: str, email: str) -> None:
        await self._hit("signin_per_address", client, client=client, email=email)
        await self._hit("signin_per_account", account_key(email), client=client, email=email)

    async def signup(self, *, client: str, email: str) -> None:
        await self._hit("signup_per_address", client, client=client, email=email)
        await self._hit("signup_per_account", account_key(email), client=client, email=email)

    async def refresh(self, *, client: str, family: str, user_id: str) -> None:
        await self._hit("refresh_per_family", family, client=client, user_id=user_id)

    async def _hit(
        self,
        name: str,
        key: str,
        *,
        client: str,
        email: str | None = None,
        user_id: str | None = None,
    ) -> None:
        limit = self.limits[name]
        try:
            if await self.limiter.hit(limit.item, name, key):
                return
            stats = await self.limiter.get_window_stats(limit.item, name, key)
        except (StorageError, OSError, TimeoutError) as error:
            logger.warning("rate_limit_store_unavailable", limit=name, error=str(error))
            return
        audit.rate_limited(limit=name, client=client, email=email, user_id=user_id)
        raise TooManyRequests(max(1, math.ceil(stats.reset_time - time.time())))
