"""Alembic's entry point for the user service's migrations (``python -m vidmesh_user migrate``)."""

from vidmesh.kit.migrations import run_migrations

from vidmesh_user.models import Base

run_migrations(Base.metadata)
