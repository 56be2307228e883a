"""Alembic's entry point for the video service's migrations
(``python -m vidmesh_video migrate``)."""

from vidmesh.kit.migrations import run_migrations

from vidmesh_video.models import Base

run_migrations(Base.metadata)
