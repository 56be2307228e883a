"""Table conventions shared by every service's models.

Each service declares its own ``Base`` (so its metadata, and its migrations, hold only its
tables) with this naming convention, so constraint names are stable across autogenerate runs.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import MetaData

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A fresh MetaData with the naming convention, for one service's ``Base``."""
    return MetaData(naming_convention=NAMING_CONVENTION)
