"""JWTs and refresh-token rotation.

Access and refresh tokens are HS256 JWTs signed with different secrets and told apart by their
``type`` claim too. Claims: ``sub`` (user id), ``type``, ``jti``, ``family``, ``iat``, ``exp``.
A sign-in starts a family; each refresh marks its token used and issues the next pair in the
same family; presenting a used token again revokes the family (RFC 9700 4.14.2).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import jwt
from vidmesh.kit.db import Database

from vidmesh_api_gateway.errors import Unauthorized
from vidmesh_api_gateway.models import RefreshToken
from vidmesh_api_gateway.repository import RefreshTokenRepository
from vidmesh_api_gateway.revocation import SessionCheck

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "type", "jti", "family", "iat", "exp"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidToken(Unauthorized):
    default_message = "Invalid or expired token"


class RefreshTokenReused(InvalidToken):
    """A spent refresh token came back: its family is revoked (the route audits who)."""

    default_message = "Refresh token reused; its session is revoked"

    def __init__(self, user_id: str, family: uuid.UUID) -> None:
        super().__init__()
        self.user_id = user_id
        self.family = family


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    type: TokenType
    jti: uuid.UUID
    family: uuid.UUID
    iat: int
    exp: int


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    refresh_claims: TokenClaims


def token_hash(token: str) -> str:
    """SHA-256 hex of a token, the only form in which refresh tokens are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenCodec:
    """Signs and verifies both kinds of token, each with its own secret and lifetime."""

    def __init__(
        self,
        *,
        access_secret: str,
        refresh_secret: str,
        access_ttl: int,
        refresh_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = {TokenType.ACCESS: access_secret, TokenType.REFRESH: refresh_secret}
        self._ttls = {TokenType.ACCESS: access_ttl, TokenType.REFRESH: refresh_ttl}
        self._clock = clock

    def issue(
        self, user_id: str, token_type: TokenType, family: uuid.UUID
    ) -> tuple[str, TokenClaims]:
        now = int(self._clock())
        claims = TokenClaims(
            sub=user_id,
            type=token_type,
            jti=uuid.uuid4(),
            family=family,
            iat=now,
            exp=now + self._ttls[token_type],
        )
        payload = {
            "sub": claims.sub,
            "type": claims.type.value,
            "jti": str(claims.jti),
            "family": str(claims.family),
            "iat": claims.iat,
            "exp": claims.exp,
        }
        return jwt.encode(payload, self._secrets[token_type], algorithm=ALGORITHM), claims

    def issue_pair(self, user_id: str, family: uuid.UUID) -> TokenPair:
        access, _ = self.issue(user_id, TokenType.ACCESS, family)
        refresh, refresh_claims = self.issue(user_id, TokenType.REFRESH, family)
        return TokenPair(access, refresh, refresh_claims)

    def verify(self, token: str, token_type: TokenType) -> TokenClaims:
        """The claims of a valid, unexpired token of ``token_type``; else :class:`InvalidToken`."""
        try:
            payload = jwt.decode(
                token,
                self._secrets[token_type],
                algorithms=[ALGORITHM],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token expired") from None
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        return self._claims(payload, token_type)

    def _claims(self, payload: dict[str, object], token_type: TokenType) -> TokenClaims:
        try:
            claims = TokenClaims(
                sub=str(payload["sub"]),
                type=TokenType(str(payload["type"])),
                jti=uuid.UUID(str(payload["jti"])),
                family=uuid.UUID(str(payload["family"])),
                iat=int(str(payload["iat"])),
                exp=int(str(payload["exp"])),
            )
        except (ValueError, KeyError):
            raise InvalidToken() from None
        if claims.type is not token_type:
            raise InvalidToken(f"An {token_type.value} token is required")
        if claims.exp <= self._clock():  # PyJWT checked the wall clock; this, ours
            raise InvalidToken("Token expired")
        return claims


class RefreshSessions:
    """Refresh-token families in the gateway's database; each method is one transaction."""

    def __init__(
        self, database: Database, codec: TokenCodec, check: SessionCheck | None = None
    ) -> None:
        self.database = database
        self.codec = codec
        self.check = check
        """Told of each family this replica revokes, so its access tokens stop at once."""

    async def start(self, user_id: str) -> TokenPair:
        """A new family (sign-up, sign-in) and its first pair."""
        pair = self.codec.issue_pair(user_id, uuid.uuid4())
        async with self.database.transaction() as session:
            await _store(RefreshTokenRepository(session), pair)
        return pair

    async def rotate(self, refresh_token: str) -> TokenPair:
        """The next pair for a live refresh token. A token used before revokes its family
        (committed before the 401, so the revocation holds)."""
        claims = self.codec.verify(refresh_token, TokenType.REFRESH)
        async with self.database.transaction() as session:
            repository = RefreshTokenRepository(session)
            pair, row = await self._next_pair(repository, claims, refresh_token)
        if pair is None:
            self._forget(row.family_id)
            raise RefreshTokenReused(row.user_id, row.family_id)
        return pair

    async def _next_pair(
        self, repository: RefreshTokenRepository, claims: TokenClaims, refresh_token: str
    ) -> tuple[TokenPair | None, RefreshToken]:
        now = _now()
        row = await repository.get_for_update(claims.jti)
        if row is None or row.token_hash != token_hash(refresh_token):
            raise InvalidToken()
        if row.revoked_at is not None or row.expires_at <= now:
            raise InvalidToken()
        if row.used_at is not None:
            await repository.revoke_family(row.family_id, now)
            return None, row
        await repository.mark_used(row, now)
        pair = self.codec.issue_pair(row.user_id, row.family_id)
        await _store(repository, pair)
        return pair, row

    async def revoke(self, refresh_token: str) -> None:
        """Sign out: the family of a valid refresh token no longer refreshes (idempotent)."""
        claims = self.codec.verify(refresh_token, TokenType.REFRESH)
        async with self.database.transaction() as session:
            repository = RefreshTokenRepository(session)
            row = await repository.get_for_update(claims.jti)
            if row is None or row.token_hash != token_hash(refresh_token):
                raise InvalidToken()
            await repository.revoke_family(row.family_id, _now())
        self._forget(row.family_id)

    def _forget(self, family: uuid.UUID) -> None:
        if self.check is not None:
            self.check.forget(family)


async def _store(repository: RefreshTokenRepository, pair: TokenPair) -> None:
    claims = pair.refresh_claims
    await repository.add(
        jti=claims.jti,
        family_id=claims.family,
        user_id=claims.sub,
        token_hash=token_hash(pair.refresh_token),
        created_at=datetime.fromtimestamp(claims.iat, UTC),
        expires_at=datetime.fromtimestamp(claims.exp, UTC),
    )


def _now() -> datetime:
    return datetime.now(UTC)
