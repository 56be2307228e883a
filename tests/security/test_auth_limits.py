"""Findings: no rate limit (100 wrong passwords for one account in 3 s, each paying an argon2
hash); an access token kept working after sign-out and after its refresh family was revoked
for reuse; nothing audited.

Its own system: the shared one (conftest.py) serves every test of the suite from 127.0.0.1, so
the local run lifts its per-address limits (devstack launch.py). This one keeps the gateway's
per-address sign-in limit (30 a minute) with a tight sign-up limit, and trusts 127.0.0.1 as a
reverse proxy: each test then speaks for clients of its own addresses through
``X-Forwarded-For``, as clients behind an Ingress do.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus

import httpx
import pytest
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import PASSWORD, assert_error, bearer, sign_up, unique_email
from tests.e2e.fixtures_systems import own_system

SIGNIN = "/api/auth/signin"
SIGNUP = "/api/auth/signup"
REFRESH = "/api/auth/refresh"
SIGNUP_PER_ADDRESS = 5
ACCOUNT_LIMIT = 10  # the gateway's default sign-ins per account and minute
REFRESH_LIMIT = 30  # the gateway's default refreshes per token family and minute
WRONG = "Wrong-horse-9!"


@pytest.fixture(scope="module")
def limited(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    env = {
        "VIDMESH_API_GATEWAY_TRUSTED_PROXIES": '["127.0.0.1"]',
        "VIDMESH_API_GATEWAY_SIGNIN_LIMIT_PER_ADDRESS": "30/minute",
        "VIDMESH_API_GATEWAY_SIGNUP_LIMIT_PER_ADDRESS": f"{SIGNUP_PER_ADDRESS}/minute",
    }
    with own_system(postgres_url, tmp_path_factory, "limits", extra_env=env) as handle:
        yield handle


_next_address = iter(range(1, 250))


def client(system: RunningSystem) -> httpx.Client:
    """A client of an address of its own (198.51.100.N, named by the trusted proxy)."""
    address = f"198.51.100.{next(_next_address)}"
    return httpx.Client(
        base_url=system.gateway_url, timeout=30.0, headers={"X-Forwarded-For": address}
    )


def audit_lines(system: RunningSystem, event: str, needle: str) -> list[str]:
    """The gateway's log lines of ``event`` that mention ``needle`` (waits a little: lines
    reach the supervisor through a pipe)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in system.logs("api-gateway") if event in line and needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def assert_429(response: httpx.Response) -> None:
    assert_error(response, HTTPStatus.TOO_MANY_REQUESTS)
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_twenty_wrong_passwords_for_one_account_are_429_with_retry_after(
    limited: RunningSystem,
) -> None:
    with client(limited) as owner:
        account = sign_up(owner)
    with client(limited) as attacker:
        statuses = [
            attacker.post(SIGNIN, json={"email": account.email, "password": WRONG})
            for _ in range(20)
        ]
    assert [r.status_code for r in statuses[:ACCOUNT_LIMIT]] == [401] * ACCOUNT_LIMIT
    for response in statuses[ACCOUNT_LIMIT:]:
        assert_429(response)
    failed = audit_lines(limited, "signin_failed", account.email)
    assert len(failed) >= ACCOUNT_LIMIT
    assert "client=198.51.100." in failed[0]
    hits = audit_lines(limited, "rate_limited", account.email)
    assert hits
    assert "limit=signin_per_account" in hits[0]
    assert not [line for line in limited.logs("api-gateway") if WRONG in line]


def test_a_signup_flood_from_one_address_is_429(limited: RunningSystem) -> None:
    with client(limited) as flood:
        for _ in range(SIGNUP_PER_ADDRESS):
            sign_up(flood)
        body = {"email": unique_email("flood"), "password": PASSWORD, "passwordConfirm": PASSWORD}
        assert_429(flood.post(SIGNUP, json=body))
    with client(limited) as other:  # another address signs up as usual
        sign_up(other)


def test_refreshing_one_family_past_its_limit_is_429(limited: RunningSystem) -> None:
    with client(limited) as user:
        token = sign_up(user).refresh_token
        for _ in range(REFRESH_LIMIT):
            answer = user.post(REFRESH, headers=bearer(token))
            assert answer.status_code == HTTPStatus.CREATED, answer.text
            token = answer.json()["refreshToken"]
        assert_429(user.post(REFRESH, headers=bearer(token)))
        other_family = sign_up(user).refresh_token
        assert user.post(REFRESH, headers=bearer(other_family)).status_code == HTTPStatus.CREATED


def test_a_rate_limited_client_does_not_slow_others(limited: RunningSystem) -> None:
    with client(limited) as owner:
        victim = sign_up(owner)
    with client(limited) as other:
        bystander = sign_up(other)
    stop = threading.Event()
    refused: list[float] = []
    wrong = {"email": victim.email, "password": WRONG}

    def hammer(attacker: httpx.Client) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            if attacker.post(SIGNIN, json=wrong).status_code == HTTPStatus.TOO_MANY_REQUESTS:
                refused.append(time.perf_counter() - started)

    with client(limited) as attacker:
        for _ in range(ACCOUNT_LIMIT):  # spend the account's allowance first
            attacker.post(SIGNIN, json=wrong)
        thread = threading.Thread(target=hammer, args=(attacker,), daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while len(refused) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            with client(limited) as other:
                for _ in range(5):
                    started = time.perf_counter()
                    body = {"email": bystander.email, "password": PASSWORD}
                    answer = other.post(SIGNIN, json=body)
                    assert answer.status_code == HTTPStatus.CREATED, answer.text
                    assert time.perf_counter() - started < 2.0
        finally:
            stop.set()
            thread.join(timeout=30)
    assert len(refused) >= 20
    refused.sort()
    assert refused[len(refused) // 2] < 0.1  # a refusal pays no password hash


def authenticated(user: httpx.Client, access_token: str) -> httpx.Response:
    """A route behind the access token: a live one gets past it (404: no such video)."""
    return user.get(f"/api/videos/{uuid.uuid4()}/download", headers=bearer(access_token))


def test_an_access_token_is_401_after_signout(limited: RunningSystem) -> None:
    with client(limited) as user:
        account = sign_up(user)
        assert_error(authenticated(user, account.access_token), HTTPStatus.NOT_FOUND)
        out = user.post("/api/auth/signout", headers=bearer(account.refresh_token))
        assert out.status_code == HTTPStatus.NO_CONTENT
        assert_error(authenticated(user, account.access_token), HTTPStatus.UNAUTHORIZED)


def test_an_access_token_is_401_after_its_family_is_revoked_for_reuse(
    limited: RunningSystem,
) -> None:
    with client(limited) as user:
        account = sign_up(user)
        rotated = user.post(REFRESH, headers=bearer(account.refresh_token)).json()
        assert_error(authenticated(user, rotated["accessToken"]), HTTPStatus.NOT_FOUND)
        reused = user.post(REFRESH, headers=bearer(account.refresh_token))
        assert_error(reused, HTTPStatus.UNAUTHORIZED)
        for token in (rotated["accessToken"], account.access_token):
            assert_error(authenticated(user, token), HTTPStatus.UNAUTHORIZED)
    (line,) = audit_lines(limited, "refresh_token_reused", account.id)
    assert "client=198.51.100." in line
    assert account.refresh_token not in line
