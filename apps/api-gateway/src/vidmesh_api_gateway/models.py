"""The gateway's one table: refresh tokens, stored as hashes, grouped in rotation families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vidmesh.kit.models import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class RefreshToken(Base):
    """One issued refresh token. ``id`` is its ``jti``; a sign-in starts a ``family_id`` and
    every rotation adds a row to it, so reuse of a rotated token can revoke the whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the token: a leaked table holds no usable token."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When it was exchanged for a new pair; a second exchange is a reuse."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
