"""The video service's tables: video metadata, uploads in progress and the outbox of
``video_downloaded`` events. The bytes live in the object store (``objectstore.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vidmesh.contracts.strings import (
    MAX_ETAG_LENGTH,
    MAX_FILENAME_LENGTH,
    MAX_ID_LENGTH,
    MAX_TITLE_LENGTH,
)
from vidmesh.kit.models import service_metadata
from vidmesh.kit.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = service_metadata()


class StoredVideo(Base):
    """A finished upload; its id is the upload's id, and its bytes are the object
    ``videos/<id>`` (``objectstore.key_of``)."""

    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_newest", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    mimetype: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    filename: Mapped[str] = mapped_column(String(MAX_FILENAME_LENGTH))
    etag: Mapped[str] = mapped_column(String(MAX_ETAG_LENGTH))
    """The store's ETag of the object (SHA-256, hex, for videos moved from PostgreSQL)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Upload(Base):
    """An upload in progress: the bytes go straight to the store, as one PUT (``store_upload_id``
    None: a size known and no bigger than a part) or as a multipart upload."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH))
    filename: Mapped[str] = mapped_column(String(MAX_FILENAME_LENGTH))
    size: Mapped[int | None] = mapped_column(BigInteger)
    """Bytes declared at the start; None: not known (the gateway's streamed uploads)."""
    part_size: Mapped[int] = mapped_column(BigInteger)
    store_upload_id: Mapped[str | None] = mapped_column(String(1024))
    """The store's multipart upload id; None: one PUT of the whole object."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    """The last sign of life (a grant, a status, a part seen by the sweeper)."""


class Outbox(OutboxMixin, Base):
    """Events waiting for (or kept after) the relay: ``video_downloaded``."""
