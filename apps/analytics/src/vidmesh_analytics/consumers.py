"""The ``video_downloaded`` consumer: each event counted once, whatever Kafka redelivers.

The inbox claim and the count are one statement (one transaction), and the transport commits the
offset only after it: a crash before the commit redelivers the event, and the claim, already
committed, makes the second delivery change nothing. A failure raised from here is retried by the
transport's RetryPolicy (see ``main``); a payload that fails validation is dead-lettered at once.
"""

from __future__ import annotations

from typing import Annotated, Final

import structlog
from pydantic import StringConstraints
from vidmesh.contracts.events import VIDEO_DOWNLOADED, VideoDownloaded
from vidmesh.kit.db import Database
from vidmesh.kit.inbox import MAX_EVENT_ID_LENGTH
from vidmesh.transport import Router
from vidmesh.transport.kafka import KafkaTransport

from vidmesh_analytics.models import MAX_VIDEO_ID_LENGTH
from vidmesh_analytics.repository import DownloadRepository

logger = structlog.get_logger("vidmesh_analytics")

# PostgreSQL text cannot hold NUL: such an id would fail in the database on every retry, so it
# is refused as malformed (and dead-lettered at once) instead.
NO_NUL: Final = r"^[^\x00]+$"


class CountableDownload(VideoDownloaded):
    """A ``video_downloaded`` event whose ids fit the tables."""

    id: Annotated[str, StringConstraints(max_length=MAX_VIDEO_ID_LENGTH, pattern=NO_NUL)]
    event_id: Annotated[str, StringConstraints(max_length=MAX_EVENT_ID_LENGTH, pattern=NO_NUL)]


class DownloadConsumer:
    """Counts downloads from ``video_downloaded`` events, once per event id."""

    def __init__(self, database: Database, downloads: DownloadRepository) -> None:
        self.database = database
        self.downloads = downloads

    async def video_downloaded(self, event: CountableDownload) -> None:
        async with self.database.autocommit() as session:  # one statement: no BEGIN, COMMIT
            if not await self.downloads.count_once(session, event.event_id, event.id):
                logger.info("event_already_counted", event_id=event.event_id, video_id=event.id)
                return
        logger.debug("download_counted", event_id=event.event_id, video_id=event.id)


def build_event_router(consumer: DownloadConsumer) -> Router:
    """A router handling the events of ``vidmesh.contracts.events`` with ``consumer``, from
    Kafka only: an event is what the video service's outbox published, never what a TCP caller
    says happened (a forged ``video_downloaded`` over TCP finds no handler)."""
    router = Router(transports=[KafkaTransport.name])
    router.event(VIDEO_DOWNLOADED)(consumer.video_downloaded)
    return router
