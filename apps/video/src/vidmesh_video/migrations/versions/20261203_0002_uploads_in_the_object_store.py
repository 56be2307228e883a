"""uploads in the object store

Uploads in progress were chunks in PostgreSQL; now they are grants to PUT into the object
store. Unfinished chunked uploads cannot go on (their pattern is gone): they are dropped, and
so are their chunks. Finished videos' chunks stay until ``migrate`` has moved them (0003).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM video_chunks c"
        " WHERE NOT EXISTS (SELECT 1 FROM videos v WHERE v.id = c.video_id)"
    )
    op.execute("DELETE FROM uploads")
    op.drop_column("uploads", "received")
    op.add_column("uploads", sa.Column("size", sa.BigInteger(), nullable=True))
    op.add_column("uploads", sa.Column("part_size", sa.BigInteger(), nullable=False))
    op.add_column("uploads", sa.Column("store_upload_id", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM uploads")
    op.drop_column("uploads", "store_upload_id")
    op.drop_column("uploads", "part_size")
    op.drop_column("uploads", "size")
    op.add_column("uploads", sa.Column("received", sa.BigInteger(), nullable=False))
