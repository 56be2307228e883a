"""Kafka topics and their events. The key of every ``video_downloaded`` record is the video id,
so one video's events stay in order on one partition."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from vidmesh.contracts.strings import EventId, Id
from vidmesh.contracts.wire import WireModel

VIDEO_DOWNLOADED: Final = "video_downloaded"


class VideoDownloaded(WireModel):
    """``{"id": videoId, ...}`` as the tutorial's event, plus what makes it countable once."""

    id: Id
    """The video's id (the tutorial's only field)."""
    event_id: EventId
    """Unique per download: analytics counts an event id once, however often it arrives."""
    user_id: Id | None = None
    downloaded_at: datetime
