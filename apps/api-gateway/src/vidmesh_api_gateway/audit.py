"""The audit log: who tried what, from where, on the ``vidmesh.audit`` logger (the logger the
services' refused connections use too), one event per line, at warning.

``who`` is an account's email or user id, ``client`` the client's address (the peer, or the one
a trusted proxy named). Never a password or a token: callers pass only these fields.
"""

from __future__ import annotations

import uuid
from typing import Final

import structlog

AUDIT_LOGGER: Final = "vidmesh.audit"

audit = structlog.get_logger(AUDIT_LOGGER)


def signin_failed(*, email: str, client: str) -> None:
    audit.warning("signin_failed", email=email, client=client)


def refresh_token_reused(*, user_id: str, family: uuid.UUID, client: str) -> None:
    audit.warning("refresh_token_reused", user_id=user_id, family=str(family), client=client)


def rate_limited(
    *, limit: str, client: str, email: str | None = None, user_id: str | None = None
) -> None:
    """``limit``: which one was hit (``signin_per_account``...)."""
    who = {key: value for key, value in (("email", email), ("user_id", user_id)) if value}
    audit.warning("rate_limited", limit=limit, client=client, **who)
