"""Every way sign-up, sign-in and the bearer tokens can be wrong, each answered with the right
status in the one error shape ``{statusCode, message, error}``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httpx
import jwt
import pytest
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import (
    PASSWORD,
    Account,
    assert_error,
    bearer,
    sign_up,
    unique_email,
)

SIGNUP = "/api/auth/signup"
SIGNIN = "/api/auth/signin"
REFRESH = "/api/auth/refresh"
SIGNOUT = "/api/auth/signout"


def _signup_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": unique_email("signup"),
        "password": PASSWORD,
        "passwordConfirm": PASSWORD,
    }
    return body | changes


@pytest.fixture(scope="module")
def account(system: RunningSystem) -> Account:
    with httpx.Client(base_url=system.gateway_url, timeout=30.0) as client:
        return sign_up(client)


@pytest.fixture(scope="module")
def secrets(system: RunningSystem) -> dict[str, Any]:
    """The system's ``secrets.json``: what an operator holds, and a forger would need."""
    loaded: dict[str, Any] = json.loads((system.system.data_dir / "secrets.json").read_text())
    return loaded


def _token(secret: str, token_type: str, **changes: Any) -> str:
    """A token shaped like the gateway's own (claims as security.py issues them)."""
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "type": token_type,
        "jti": str(uuid.uuid4()),
        "family": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims | changes, secret, algorithm="HS256")


# -- sign-up --------------------------------------------------------------------------------


def test_signup_with_malformed_json_is_bad_request(gateway: httpx.Client) -> None:
    response = gateway.post(
        SIGNUP, content=b'{"email": "a@example.com", ', headers={"Content-Type": "application/json"}
    )
    assert assert_error(response, HTTPStatus.BAD_REQUEST) == "Malformed JSON body"


def test_signup_with_missing_fields_names_them(gateway: httpx.Client) -> None:
    response = gateway.post(SIGNUP, json={"email": unique_email()})
    message = assert_error(response, HTTPStatus.BAD_REQUEST)
    assert isinstance(message, list)
    assert any("password" in line for line in message)
    assert any("passwordConfirm" in line for line in message)


def test_signup_with_an_empty_body_is_bad_request(gateway: httpx.Client) -> None:
    assert_error(gateway.post(SIGNUP), HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize(
    "changes",
    [
        {"email": 42},
        {"password": 1234567890, "passwordConfirm": 1234567890},
        {"password": ["Correct-horse-9!"]},
        {"email": None},
    ],
    ids=["email-number", "password-number", "password-list", "email-null"],
)
def test_signup_with_wrong_types_is_bad_request(
    gateway: httpx.Client, changes: dict[str, Any]
) -> None:
    assert_error(gateway.post(SIGNUP, json=_signup_body(**changes)), HTTPStatus.BAD_REQUEST)


def test_signup_with_a_json_array_is_bad_request(gateway: httpx.Client) -> None:
    assert_error(gateway.post(SIGNUP, json=[_signup_body()]), HTTPStatus.BAD_REQUEST)


def test_signup_with_extra_fields_is_bad_request(gateway: httpx.Client) -> None:
    response = gateway.post(SIGNUP, json=_signup_body(isAdmin=True))
    message = assert_error(response, HTTPStatus.BAD_REQUEST)
    assert any("isAdmin" in line for line in message)


def test_signup_with_an_invalid_email_is_bad_request(gateway: httpx.Client) -> None:
    response = gateway.post(SIGNUP, json=_signup_body(email="not-an-email"))
    assert_error(response, HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize(
    "password",
    ["Short-1!", "no-upper-case-1!", "NO-LOWER-CASE-1!", "No-digits-here!", "NoSpecials123abc"],
    ids=["too-short", "no-upper", "no-lower", "no-digit", "no-special"],
)
def test_signup_with_a_weak_password_is_bad_request(gateway: httpx.Client, password: str) -> None:
    body = _signup_body(password=password, passwordConfirm=password)
    message = assert_error(gateway.post(SIGNUP, json=body), HTTPStatus.BAD_REQUEST)
    assert any("password" in line for line in message)


def test_signup_with_a_mismatched_confirmation_is_bad_request(gateway: httpx.Client) -> None:
    response = gateway.post(SIGNUP, json=_signup_body(passwordConfirm=PASSWORD + "x"))
    message = assert_error(response, HTTPStatus.BAD_REQUEST)
    assert any("passwordConfirm" in line for line in message)


def test_signup_with_a_taken_email_is_conflict(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    response = gateway.post(SIGNUP, json=_signup_body(email=account.email))
    assert_error(response, HTTPStatus.CONFLICT)


# -- sign-in --------------------------------------------------------------------------------


def test_signin_with_malformed_json_is_bad_request(gateway: httpx.Client) -> None:
    response = gateway.post(SIGNIN, content=b"{", headers={"Content-Type": "application/json"})
    assert_error(response, HTTPStatus.BAD_REQUEST)


def test_signin_with_missing_password_is_bad_request(gateway: httpx.Client) -> None:
    assert_error(gateway.post(SIGNIN, json={"email": unique_email()}), HTTPStatus.BAD_REQUEST)


def test_signin_with_extra_fields_is_bad_request(gateway: httpx.Client, account: Account) -> None:
    body = {"email": account.email, "password": PASSWORD, "remember": True}
    assert_error(gateway.post(SIGNIN, json=body), HTTPStatus.BAD_REQUEST)


def test_signin_with_unknown_email_and_wrong_password_answer_alike(
    gateway: httpx.Client, account: Account
) -> None:
    unknown = gateway.post(SIGNIN, json={"email": unique_email("nobody"), "password": PASSWORD})
    wrong = gateway.post(SIGNIN, json={"email": account.email, "password": PASSWORD + "x"})
    assert_error(unknown, HTTPStatus.UNAUTHORIZED)
    assert_error(wrong, HTTPStatus.UNAUTHORIZED)
    assert unknown.json() == wrong.json()


# -- bearer tokens on a route that wants an access token ------------------------------------

BadAuth = Callable[[Account, dict[str, Any]], dict[str, str]]

BAD_ACCESS: dict[str, BadAuth] = {
    "missing-header": lambda account, secrets: {},
    "bearer-alone": lambda account, secrets: {"Authorization": "Bearer"},
    "basic-scheme": lambda account, secrets: {"Authorization": "Basic x"},
    "basic-with-token": lambda account, secrets: {"Authorization": f"Basic {account.access_token}"},
    "garbage": lambda account, secrets: bearer("not.a.jwt"),
    "tampered": lambda account, secrets: bearer(account.access_token[:-3] + "AAA"),
    "other-key": lambda account, secrets: bearer(_token("another-key-" * 4, "access")),
    "refresh-token": lambda account, secrets: bearer(account.refresh_token),
    "refresh-key-typed-access": lambda account, secrets: bearer(
        _token(secrets["jwt_refresh_secret"], "access")
    ),
    "access-key-typed-refresh": lambda account, secrets: bearer(
        _token(secrets["jwt_access_secret"], "refresh")
    ),
    "expired": lambda account, secrets: bearer(
        _token(secrets["jwt_access_secret"], "access", iat=1_600_000_000, exp=1_600_000_900)
    ),
    "missing-claims": lambda account, secrets: bearer(
        jwt.encode({"sub": account.id, "type": "access"}, secrets["jwt_access_secret"], "HS256")
    ),
    "alg-none": lambda account, secrets: bearer(
        jwt.encode(
            jwt.decode(account.access_token, options={"verify_signature": False}),
            "",
            algorithm="none",
        )
    ),
}


@pytest.mark.parametrize("kind", BAD_ACCESS)
def test_download_with_a_bad_access_token_is_unauthorized(
    gateway: httpx.Client, account: Account, secrets: dict[str, Any], kind: str
) -> None:
    headers = BAD_ACCESS[kind](account, secrets)
    response = gateway.get(f"/api/videos/{uuid.uuid4()}/download", headers=headers)
    assert_error(response, HTTPStatus.UNAUTHORIZED)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", ["missing-header", "garbage", "refresh-token", "expired"])
def test_upload_with_a_bad_access_token_is_unauthorized(
    gateway: httpx.Client, account: Account, secrets: dict[str, Any], kind: str
) -> None:
    headers = BAD_ACCESS[kind](account, secrets)
    response = gateway.post(
        "/api/videos", files={"video": ("a.mp4", b"x")}, data={"title": "t1"}, headers=headers
    )
    assert_error(response, HTTPStatus.UNAUTHORIZED)


def test_an_expired_access_token_is_told_apart(
    gateway: httpx.Client, secrets: dict[str, Any]
) -> None:
    token = _token(secrets["jwt_access_secret"], "access", iat=1_600_000_000, exp=1_600_000_900)
    response = gateway.get(f"/api/videos/{uuid.uuid4()}/download", headers=bearer(token))
    assert assert_error(response, HTTPStatus.UNAUTHORIZED) == "Token expired"


def test_a_valid_access_token_signed_by_the_system_key_is_accepted(
    gateway: httpx.Client, account: Account, secrets: dict[str, Any]
) -> None:
    """The forged tokens above fail for the reason they name: the same claims, signed with the
    right key, unexpired and of a live session, pass (404: no such video)."""
    family = jwt.decode(account.access_token, options={"verify_signature": False})["family"]
    token = _token(secrets["jwt_access_secret"], "access", sub=account.id, family=family)
    response = gateway.get(f"/api/videos/{uuid.uuid4()}/download", headers=bearer(token))
    assert_error(response, HTTPStatus.NOT_FOUND)


def test_a_valid_access_token_of_an_unknown_session_is_refused(
    gateway: httpx.Client, secrets: dict[str, Any]
) -> None:
    token = _token(secrets["jwt_access_secret"], "access")  # a family the gateway never made
    response = gateway.get(f"/api/videos/{uuid.uuid4()}/download", headers=bearer(token))
    assert_error(response, HTTPStatus.UNAUTHORIZED)


# -- refresh and sign-out -------------------------------------------------------------------

BAD_REFRESH: dict[str, BadAuth] = {
    "missing-header": lambda account, secrets: {},
    "bearer-alone": lambda account, secrets: {"Authorization": "Bearer"},
    "basic-scheme": lambda account, secrets: {"Authorization": "Basic x"},
    "garbage": lambda account, secrets: bearer("garbage"),
    "access-token": lambda account, secrets: bearer(account.access_token),
    "other-key": lambda account, secrets: bearer(_token("another-key-" * 4, "refresh")),
    "expired": lambda account, secrets: bearer(
        _token(secrets["jwt_refresh_secret"], "refresh", iat=1_600_000_000, exp=1_600_000_900)
    ),
    "unknown-to-the-store": lambda account, secrets: bearer(
        _token(secrets["jwt_refresh_secret"], "refresh", sub=account.id)
    ),
}


@pytest.mark.parametrize("kind", BAD_REFRESH)
def test_refresh_with_a_bad_refresh_token_is_unauthorized(
    gateway: httpx.Client, account: Account, secrets: dict[str, Any], kind: str
) -> None:
    response = gateway.post(REFRESH, headers=BAD_REFRESH[kind](account, secrets))
    assert_error(response, HTTPStatus.UNAUTHORIZED)


@pytest.mark.parametrize("kind", ["missing-header", "garbage", "access-token"])
def test_signout_with_a_bad_refresh_token_is_unauthorized(
    gateway: httpx.Client, account: Account, secrets: dict[str, Any], kind: str
) -> None:
    response = gateway.post(SIGNOUT, headers=BAD_REFRESH[kind](account, secrets))
    assert_error(response, HTTPStatus.UNAUTHORIZED)


def test_reusing_a_rotated_refresh_token_revokes_its_family(gateway: httpx.Client) -> None:
    first = sign_up(gateway)
    rotated = gateway.post(REFRESH, headers=bearer(first.refresh_token))
    assert rotated.status_code == HTTPStatus.CREATED, rotated.text
    newer = rotated.json()["refreshToken"]

    reused = gateway.post(REFRESH, headers=bearer(first.refresh_token))
    assert_error(reused, HTTPStatus.UNAUTHORIZED)
    # The thief's replay also ends the victim's session: the newer token is dead too.
    assert_error(gateway.post(REFRESH, headers=bearer(newer)), HTTPStatus.UNAUTHORIZED)


def test_reuse_leaves_other_sessions_of_the_user_alone(gateway: httpx.Client) -> None:
    first = sign_up(gateway)
    other = gateway.post(SIGNIN, json={"email": first.email, "password": PASSWORD})
    assert other.status_code == HTTPStatus.CREATED
    assert gateway.post(REFRESH, headers=bearer(first.refresh_token)).status_code == 201
    assert_error(gateway.post(REFRESH, headers=bearer(first.refresh_token)), 401)
    kept = gateway.post(REFRESH, headers=bearer(other.json()["refreshToken"]))
    assert kept.status_code == HTTPStatus.CREATED, kept.text


def test_a_signed_out_refresh_token_no_longer_refreshes(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    signout = gateway.post(SIGNOUT, headers=bearer(account.refresh_token))
    assert signout.status_code == HTTPStatus.NO_CONTENT
    assert_error(gateway.post(REFRESH, headers=bearer(account.refresh_token)), 401)
