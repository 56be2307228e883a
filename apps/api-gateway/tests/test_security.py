import time
import uuid

import jwt
import pytest

from vidmesh_api_gateway.security import (
    InvalidToken,
    TokenCodec,
    TokenType,
    token_hash,
)

ACCESS = "a" * 40
REFRESH = "r" * 40


def make_codec(clock: float | None = None, *, ttl: int = 60) -> TokenCodec:
    return TokenCodec(
        access_secret=ACCESS,
        refresh_secret=REFRESH,
        access_ttl=ttl,
        refresh_ttl=ttl * 10,
        clock=(lambda: clock) if clock is not None else time.time,
    )


def test_access_token_carries_its_claims() -> None:
    family = uuid.uuid4()
    token, issued = make_codec().issue("user-1", TokenType.ACCESS, family)
    claims = make_codec().verify(token, TokenType.ACCESS)
    assert claims == issued
    assert (claims.sub, claims.type, claims.family) == ("user-1", TokenType.ACCESS, family)
    assert claims.exp - claims.iat == 60


def test_pair_shares_a_family_and_differs_in_jti() -> None:
    pair = make_codec().issue_pair("user-1", uuid.uuid4())
    access = make_codec().verify(pair.access_token, TokenType.ACCESS)
    refresh = make_codec().verify(pair.refresh_token, TokenType.REFRESH)
    assert access.family == refresh.family == pair.refresh_claims.family
    assert access.jti != refresh.jti
    assert refresh.exp - refresh.iat == 600


def test_access_token_is_refused_where_a_refresh_token_is_wanted() -> None:
    token, _ = make_codec().issue("user-1", TokenType.ACCESS, uuid.uuid4())
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.REFRESH)


def test_refresh_token_is_refused_where_an_access_token_is_wanted() -> None:
    token, _ = make_codec().issue("user-1", TokenType.REFRESH, uuid.uuid4())
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.ACCESS)


def test_token_typed_access_but_signed_with_the_refresh_secret_is_refused() -> None:
    now = int(time.time())
    payload = {"sub": "u", "type": "access", "jti": str(uuid.uuid4())}
    payload |= {"family": str(uuid.uuid4()), "iat": now, "exp": now + 60}
    token = jwt.encode(payload, REFRESH, algorithm="HS256")
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.ACCESS)


def test_token_signed_with_another_secret_is_refused() -> None:
    other = TokenCodec(
        access_secret="x" * 40, refresh_secret="y" * 40, access_ttl=60, refresh_ttl=60
    )
    token, _ = other.issue("user-1", TokenType.ACCESS, uuid.uuid4())
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.ACCESS)


def test_expired_token_is_refused() -> None:
    issued_long_ago = make_codec(time.time() - 3600)
    token, _ = issued_long_ago.issue("user-1", TokenType.ACCESS, uuid.uuid4())
    with pytest.raises(InvalidToken, match="expired"):
        make_codec().verify(token, TokenType.ACCESS)


def test_token_past_its_expiry_on_our_clock_is_refused() -> None:
    token, claims = make_codec().issue("user-1", TokenType.ACCESS, uuid.uuid4())
    with pytest.raises(InvalidToken, match="expired"):
        make_codec(claims.exp + 1).verify(token, TokenType.ACCESS)


def test_unsigned_token_is_refused() -> None:
    now = int(time.time())
    payload = {"sub": "u", "type": "access", "jti": str(uuid.uuid4())}
    payload |= {"family": str(uuid.uuid4()), "iat": now, "exp": now + 60}
    token = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.ACCESS)


def test_token_without_a_family_claim_is_refused() -> None:
    now = int(time.time())
    payload = {"sub": "u", "type": "access", "jti": str(uuid.uuid4()), "iat": now, "exp": now + 60}
    token = jwt.encode(payload, ACCESS, algorithm="HS256")
    with pytest.raises(InvalidToken):
        make_codec().verify(token, TokenType.ACCESS)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "ey.ey.ey"])
def test_malformed_token_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        make_codec().verify(garbage, TokenType.ACCESS)


def test_tampered_token_is_refused() -> None:
    token, _ = make_codec().issue("user-1", TokenType.ACCESS, uuid.uuid4())
    header, _payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(b'{"sub":"admin"}').decode()
    with pytest.raises(InvalidToken):
        make_codec().verify(f"{header}.{forged}.{signature}", TokenType.ACCESS)


def test_token_hash_is_the_sha256_hex_of_the_token() -> None:
    digest = token_hash("abc")
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
