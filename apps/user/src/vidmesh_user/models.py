"""The user service's tables: ``users``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, Text, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vidmesh.contracts.user import MAX_EMAIL_LENGTH
from vidmesh.kit.models import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class User(Base):
    """An account. ``email`` is stored normalised (stripped, lower-case), so the unique
    constraint also refuses ``A@x.io`` beside ``a@x.io``."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(MAX_EMAIL_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
