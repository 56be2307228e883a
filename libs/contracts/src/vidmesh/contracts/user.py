"""The user service (TCP 3001): accounts and credential checks.

Payload shapes are the tutorial's, so its NestJS gateway can call this service unchanged:
``findOneByEmail`` takes a bare email string; the others take objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import Field
from vidmesh.contracts.wire import WireModel

FIND_ONE_BY_EMAIL: Final = {"cmd": "findOneByEmail"}
"""data: the email as a bare string -> :class:`UserId` (``{"id": null}`` when unknown)."""
FIND_ONE_BY_ID: Final = {"cmd": "findOneById"}
"""data: :class:`UserLookup` -> :class:`User`; unknown id: 404."""
CREATE: Final = {"cmd": "create"}
"""data: :class:`Credentials` -> :class:`UserId`; email taken: 409."""
VALIDATE: Final = {"cmd": "validate"}
"""data: :class:`Credentials` -> :class:`UserId`; wrong email or password: 401 (one answer)."""

MAX_EMAIL_LENGTH: Final = 254
MAX_PASSWORD_LENGTH: Final = 128


class Credentials(WireModel):
    email: str = Field(min_length=3, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserId(WireModel):
    id: str | None


class UserLookup(WireModel):
    id: str


class User(WireModel):
    id: str
    email: str
    created_at: datetime
