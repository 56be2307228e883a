"""Alembic's entry point for the analytics service's migrations
(``python -m vidmesh_analytics migrate``)."""

from vidmesh.kit.migrations import run_migrations

from vidmesh_analytics.models import Base

run_migrations(Base.metadata)
