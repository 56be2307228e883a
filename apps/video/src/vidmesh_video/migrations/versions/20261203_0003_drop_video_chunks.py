"""drop video_chunks

The bytes live in the object store. ``python -m vidmesh_video migrate`` moves every video's
chunks there (verified by SHA-256) before it runs this; run on its own with chunks left, it
refuses rather than lose a video.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:41:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    left = op.get_bind().scalar(sa.text("SELECT count(DISTINCT video_id) FROM video_chunks"))
    if left:
        raise RuntimeError(
            f"{left} videos still have their bytes in video_chunks: run"
            " `python -m vidmesh_video migrate`, which moves them to the object store first"
        )
    op.drop_table("video_chunks")


def downgrade() -> None:
    # The table comes back empty: the bytes stay in the object store.
    op.create_table(
        "video_chunks",
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("video_id", "seq", name=op.f("pk_video_chunks")),
    )
    op.execute("ALTER TABLE video_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
