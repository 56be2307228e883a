"""The video service's tables: video metadata, uploads in progress, the bytes in chunks, and
the outbox of ``video_downloaded`` events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vidmesh.kit.models import service_metadata
from vidmesh.kit.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = service_metadata()


class StoredVideo(Base):
    """A finished upload; its id is the upload's id, so its chunks never move."""

    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_newest", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    mimetype: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    etag: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the bytes, hex."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Upload(Base):
    """An upload in progress: chunks arrive in order and ``received`` counts their bytes."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class VideoChunk(Base):
    """``CHUNK_SIZE`` bytes of a video (or of an upload: the same id); only the last chunk is
    shorter. The migration stores ``data`` EXTERNAL: video bytes do not compress."""

    __tablename__ = "video_chunks"

    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Outbox(OutboxMixin, Base):
    """Events waiting for (or kept after) the relay: ``video_downloaded``."""
