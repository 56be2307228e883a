"""The user service's settings, from ``VIDMESH_USER_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from vidmesh.kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """``VIDMESH_USER_DATABASE_URL`` is required; the rest have defaults."""

    model_config = SettingsConfigDict(env_prefix="VIDMESH_USER_")

    port: int = 3001
