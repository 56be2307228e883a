"""The user service's patterns (``vidmesh.contracts.user``): one method each, no SQL."""

from __future__ import annotations

import re
import uuid
from typing import Final

import structlog
from vidmesh.contracts import user as contract
from vidmesh.contracts.strings import Email
from vidmesh.kit.db import Database
from vidmesh.transport import Router

from vidmesh_user.errors import EmailTaken, InvalidCredentials, InvalidEmail, UserNotFound
from vidmesh_user.repository import UserRepository
from vidmesh_user.security import Passwords

logger = structlog.get_logger("vidmesh_user")

# One "@", no spaces, a dot in the domain: enough to catch typos and garbage. Whether the
# address receives mail is for a confirmation email to prove, not for a pattern.
EMAIL_SHAPE: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalize_email(email: str) -> str:
    """The stored form of an email: stripped and lower-cased, so lookups ignore case."""
    return email.strip().lower()


class UserHandlers:
    """Accounts and credential checks, each call in its own transaction."""

    def __init__(self, database: Database, users: UserRepository, passwords: Passwords) -> None:
        self.database = database
        self.users = users
        self.passwords = passwords

    async def find_one_by_email(self, email: Email) -> contract.UserId:
        """The tutorial's shape: the payload is the email itself, a bare string."""
        async with self.database.transaction() as session:
            user_id = await self.users.id_by_email(session, normalize_email(email))
        return contract.UserId(id=None if user_id is None else str(user_id))

    async def find_one_by_id(self, lookup: contract.UserLookup) -> contract.User:
        try:
            user_id = uuid.UUID(lookup.id)
        except ValueError:
            raise UserNotFound() from None  # no user can have an id that is not a UUID
        async with self.database.transaction() as session:
            user = await self.users.by_id(session, user_id)
        if user is None:
            raise UserNotFound()
        return contract.User(id=str(user.id), email=user.email, created_at=user.created_at)

    async def create(self, credentials: contract.Credentials) -> contract.UserId:
        email = normalize_email(credentials.email)
        if not EMAIL_SHAPE.fullmatch(email):
            raise InvalidEmail()
        password_hash = await self.passwords.hash(credentials.password)
        async with self.database.transaction() as session:
            user_id = await self.users.insert(session, email=email, password_hash=password_hash)
        if user_id is None:
            raise EmailTaken()
        logger.info("user_created", user_id=str(user_id))
        return contract.UserId(id=str(user_id))

    async def validate(self, credentials: contract.Credentials) -> contract.UserId:
        """The user's id for a matching email and password; one 401 for every mismatch."""
        # The lookup's transaction ends before the hash check: a connection is not held for
        # the tens of milliseconds argon2 takes.
        async with self.database.transaction() as session:
            user = await self.users.by_email(session, normalize_email(credentials.email))
        if user is None:
            await self.passwords.verify_nothing(credentials.password)
            raise InvalidCredentials()
        if not await self.passwords.verify(user.password_hash, credentials.password):
            raise InvalidCredentials()
        if self.passwords.needs_rehash(user.password_hash):
            await self._rehash(user.id, credentials.password)
        return contract.UserId(id=str(user.id))

    async def _rehash(self, user_id: uuid.UUID, password: str) -> None:
        """Store a hash with today's parameters, now that the password is known to be right."""
        password_hash = await self.passwords.hash(password)
        async with self.database.transaction() as session:
            await self.users.set_password_hash(session, user_id, password_hash)
        logger.info("password_rehashed", user_id=str(user_id))


def build_router(handlers: UserHandlers) -> Router:
    """A router answering every pattern of ``vidmesh.contracts.user`` with ``handlers``."""
    router = Router()
    router.message(contract.FIND_ONE_BY_EMAIL)(handlers.find_one_by_email)
    router.message(contract.FIND_ONE_BY_ID)(handlers.find_one_by_id)
    router.message(contract.CREATE)(handlers.create)
    router.message(contract.VALIDATE)(handlers.validate)
    return router
