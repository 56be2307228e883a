"""Password hashing with argon2id at OWASP's parameters, off the event loop.

Each hash or verify costs tens of milliseconds of CPU and 19 MiB, so it runs in a worker thread
(``asyncio.to_thread``) and the loop keeps answering other calls meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def owasp_hasher() -> PasswordHasher:
    """argon2id, m=19 MiB, t=2, p=1: OWASP's first recommended configuration."""
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class Passwords:
    """Hashes and checks passwords; ``verify_nothing`` spends what a real check spends."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or owasp_hasher()
        # Checked against when the email is unknown, so that answer takes as long as a wrong
        # password's and timing does not tell which emails have accounts. Made once, at startup.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches ``password_hash``; False for a mismatch or a bad hash."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of a failed check (for an unknown email); the result is always a miss."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
