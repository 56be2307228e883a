"""The analytics service's tables: ``video_downloads`` (one row per video) and the inbox."""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from vidmesh.kit.inbox import processed_events_table
from vidmesh.kit.models import service_metadata

MAX_VIDEO_ID_LENGTH: Final = 255


class Base(DeclarativeBase):
    metadata = service_metadata()


class VideoDownloads(Base):
    """How often a video was downloaded. The video id is the key, so concurrent first counts
    of one video meet on the primary key and add up (an upsert) instead of making two rows."""

    __tablename__ = "video_downloads"

    video_id: Mapped[str] = mapped_column(String(MAX_VIDEO_ID_LENGTH), primary_key=True)
    downloads: Mapped[int] = mapped_column(BigInteger)


processed_events = processed_events_table(Base.metadata)
"""The ids of the ``video_downloaded`` events already counted."""
