"""create video_downloads and the processed_events inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-25 03:41:57.003586
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_table(
        "video_downloads",
        sa.Column("video_id", sa.String(length=255), nullable=False),
        sa.Column("downloads", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("video_id", name=op.f("pk_video_downloads")),
    )


def downgrade() -> None:
    op.drop_table("video_downloads")
    op.drop_table("processed_events")
