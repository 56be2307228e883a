"""The user service (TCP 3001): accounts and credential checks.

Payload shapes are the tutorial's, so its NestJS gateway can call this service unchanged:
``findOneByEmail`` takes a bare email string; the others take objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import Field
from vidmesh.contracts.strings import MAX_EMAIL_LENGTH as MAX_EMAIL_LENGTH
from vidmesh.contracts.strings import MAX_PASSWORD_LENGTH as MAX_PASSWORD_LENGTH
from vidmesh.contracts.strings import Email, Id, Password
from vidmesh.contracts.wire import WireModel

FIND_ONE_BY_EMAIL: Final = {"cmd": "findOneByEmail"}
"""data: the email as a bare string (an :data:`Email`) -> :class:`UserId` (``{"id": null}``
when unknown)."""
FIND_ONE_BY_ID: Final = {"cmd": "findOneById"}
"""data: :class:`UserLookup` -> :class:`User`; unknown id: 404."""
CREATE: Final = {"cmd": "create"}
"""data: :class:`Credentials` -> :class:`UserId`; email taken: 409."""
VALIDATE: Final = {"cmd": "validate"}
"""data: :class:`Credentials` -> :class:`UserId`; wrong email or password: 401 (one answer)."""


class Credentials(WireModel):
    email: Email
    password: Password


class UserId(WireModel):
    id: Id | None


class UserLookup(WireModel):
    id: Id


class User(WireModel):
    """An answer: the stored email is capped, not checked for controls again."""

    id: Id
    email: str = Field(max_length=MAX_EMAIL_LENGTH)
    created_at: datetime
