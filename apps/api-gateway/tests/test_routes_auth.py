"""/api/auth over real HTTP: validation, the error shape, tokens, rotation and sign-out.

The user service is not running here: everything before the call to it, and refresh and
sign-out (which only need the gateway's own database) are tested; the rest is end-to-end."""

from __future__ import annotations

import uuid

import httpx
import pytest

from vidmesh_api_gateway.security import RefreshSessions, TokenCodec, TokenType

VALID = {"email": "ada@example.com", "password": "Password1!", "passwordConfirm": "Password1!"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status
    body: dict[str, object] = answer.json()
    assert set(body) == {"statusCode", "message", "error"}
    assert body["statusCode"] == status
    return body


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"email": "not-an-email"}, "body.email"),
        ({"password": "short1!A", "passwordConfirm": "short1!A"}, "10 to 128 characters"),
        ({"password": "password1!", "passwordConfirm": "password1!"}, "an upper-case letter"),
        ({"passwordConfirm": "Password2!"}, "passwordConfirm must match"),
        ({"password": 1234567890}, "body.password"),
        ({"role": "ADMIN"}, "body.role"),
    ],
)
async def test_signup_refuses_bad_input_with_400_and_messages(
    http: httpx.AsyncClient, change: dict[str, object], mentions: str
) -> None:
    answer = await http.post("/api/auth/signup", json=VALID | change)
    body = assert_error(answer, 400)
    assert body["error"] == "Bad Request"
    assert isinstance(body["message"], list)
    assert any(mentions in message for message in body["message"])


async def test_signup_names_each_missing_field(http: httpx.AsyncClient) -> None:
    body = assert_error(await http.post("/api/auth/signup", json={}), 400)
    assert isinstance(body["message"], list)
    assert {"body.email: Field required", "body.password: Field required"} <= set(body["message"])


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/auth/signin", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    body = assert_error(answer, 400)
    assert body["message"] == "Malformed JSON body"


async def test_signin_when_the_user_service_is_down_is_503(http: httpx.AsyncClient) -> None:
    answer = await http.post("/api/auth/signin", json={"email": "a@b.co", "password": "x"})
    assert_error(answer, 503)


async def test_refresh_without_a_token_is_401_with_a_bearer_challenge(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post("/api/auth/refresh")
    assert_error(answer, 401)
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Basic abc", "bearer", "Token x", "x"])
async def test_refresh_with_a_malformed_header_is_401(http: httpx.AsyncClient, header: str) -> None:
    answer = await http.post("/api/auth/refresh", headers={"Authorization": header})
    assert_error(answer, 401)
    assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_refresh_with_an_access_token_is_401(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    assert_error(await http.post("/api/auth/refresh", headers=bearer(pair.access_token)), 401)


async def test_refresh_rotates_and_reuse_revokes_the_session(
    http: httpx.AsyncClient, sessions: RefreshSessions, codec: TokenCodec
) -> None:
    user = str(uuid.uuid4())
    pair = await sessions.start(user)
    answer = await http.post("/api/auth/refresh", headers=bearer(pair.refresh_token))
    assert answer.status_code == 201
    tokens = answer.json()
    assert set(tokens) == {"accessToken", "refreshToken"}
    assert codec.verify(tokens["accessToken"], TokenType.ACCESS).sub == user
    reused = await http.post("/api/auth/refresh", headers=bearer(pair.refresh_token))
    assert_error(reused, 401)
    after = await http.post("/api/auth/refresh", headers=bearer(tokens["refreshToken"]))
    assert_error(after, 401)


async def test_signout_is_204_and_the_token_no_longer_refreshes(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    answer = await http.post("/api/auth/signout", headers=bearer(pair.refresh_token))
    assert (answer.status_code, answer.content) == (204, b"")
    assert_error(await http.post("/api/auth/refresh", headers=bearer(pair.refresh_token)), 401)


async def test_signout_with_an_access_token_is_401(
    http: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    pair = await sessions.start(str(uuid.uuid4()))
    assert_error(await http.post("/api/auth/signout", headers=bearer(pair.access_token)), 401)
