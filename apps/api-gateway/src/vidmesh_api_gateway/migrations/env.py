"""Alembic environment of the api-gateway: its own tables only."""

from vidmesh.kit.migrations import run_migrations

from vidmesh_api_gateway.models import Base

run_migrations(Base.metadata)
