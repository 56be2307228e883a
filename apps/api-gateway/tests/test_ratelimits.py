"""Rate limits over real HTTP (sign-in, sign-up per address and per account, refresh per
family), the 429's shape and ``Retry-After``, the audit lines, who counts as the client, and
the limits shared by two gateways through one real ``redis-server``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from vidmesh_api_gateway.main import build_service
from vidmesh_api_gateway.ratelimits import RateLimits, TooManyRequests, storage_uri
from vidmesh_api_gateway.security import RefreshSessions
from vidmesh_api_gateway.settings import Settings

TIGHT = {
    "signin_limit_per_address": "4/minute",
    "signin_limit_per_account": "2/minute",
    "signup_limit_per_address": "3/minute",
    "signup_limit_per_account": "2/minute",
    "refresh_limit_per_family": "2/minute",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signin(email: str) -> dict[str, str]:
    return {"email": email, "password": "Wrong-password-1!"}


def signup(email: str) -> dict[str, str]:
    return {"email": email, "password": "Password1!x", "passwordConfirm": "Password1!x"}


@pytest.fixture
def tight(settings: Settings) -> Settings:
    return settings.model_copy(update=TIGHT)


async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    service = build_service(settings)
    await service.start()
    port = service.transports[0].port  # type: ignore[attr-defined]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        await service.stop()


@pytest.fixture
async def limited(tight: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(tight):
        yield client


def assert_429(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body == {
        "statusCode": 429,
        "message": "Too many requests; try again later",
        "error": "Too Many Requests",
    }
    assert 1 <= int(answer.headers["Retry-After"]) <= 60


async def test_signin_past_the_account_limit_is_429_and_audited(
    limited: httpx.AsyncClient,
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    for _ in range(2):  # under the limit: on to the user service (down here: 503)
        assert (await limited.post("/api/auth/signin", json=signin(email))).status_code == 503
    with capture_logs() as logs:
        assert_429(await limited.post("/api/auth/signin", json=signin(email.upper())))
    (line,) = [entry for entry in logs if entry["event"] == "rate_limited"]
    assert line["limit"] == "signin_per_account"
    assert line["email"] == email.upper()
    assert line["client"] == "127.0.0.1"
    assert "Wrong-password-1!" not in repr(logs)
    other = f"bob-{uuid.uuid4().hex[:8]}@example.com"  # another account is still served
    assert (await limited.post("/api/auth/signin", json=signin(other))).status_code == 503


async def test_signin_past_the_address_limit_is_429_whatever_the_account(
    limited: httpx.AsyncClient,
) -> None:
    answers = [
        await limited.post("/api/auth/signin", json=signin(f"u{n}-{uuid.uuid4().hex}@e.com"))
        for n in range(5)
    ]
    assert [a.status_code for a in answers[:4]] == [503] * 4
    assert_429(answers[4])


async def test_signup_flood_from_one_address_is_429(limited: httpx.AsyncClient) -> None:
    answers = [
        await limited.post("/api/auth/signup", json=signup(f"s{n}-{uuid.uuid4().hex}@e.com"))
        for n in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [503] * 3
    assert_429(answers[3])


async def test_refresh_past_the_family_limit_is_429(
    limited: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    token = (await sessions.start(str(uuid.uuid4()))).refresh_token
    for _ in range(2):
        answer = await limited.post("/api/auth/refresh", headers=bearer(token))
        assert answer.status_code == 201
        token = answer.json()["refreshToken"]
    assert_429(await limited.post("/api/auth/refresh", headers=bearer(token)))
    fresh = (await sessions.start(str(uuid.uuid4()))).refresh_token  # another family: served
    assert (await limited.post("/api/auth/refresh", headers=bearer(fresh))).status_code == 201


async def test_refresh_token_reuse_is_audited_with_who_and_where(
    limited: httpx.AsyncClient, sessions: RefreshSessions
) -> None:
    user = str(uuid.uuid4())
    pair = await sessions.start(user)
    assert (await limited.post("/api/auth/refresh", headers=bearer(pair.refresh_token))).is_success
    with capture_logs() as logs:
        reused = await limited.post("/api/auth/refresh", headers=bearer(pair.refresh_token))
    assert reused.status_code == 401
    (line,) = [entry for entry in logs if entry["event"] == "refresh_token_reused"]
    assert (line["user_id"], line["client"]) == (user, "127.0.0.1")
    assert line["family"] == str(pair.refresh_claims.family)
    assert pair.refresh_token not in repr(logs)


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    tight: Settings,
) -> None:
    def spoofed(n: int) -> dict[str, str]:
        return {"X-Forwarded-For": f"203.0.113.{n}"}

    async for client in serve(tight):  # no trusted proxies: the peer is the client
        codes = [
            (
                await client.post(
                    "/api/auth/signin", json=signin(f"{uuid.uuid4().hex}@e.com"), headers=spoofed(n)
                )
            ).status_code
            for n in range(5)
        ]
        assert codes[-1] == 429
    async for client in serve(tight.model_copy(update={"trusted_proxies": ["127.0.0.1"]})):
        with capture_logs() as logs:
            codes = [
                (
                    await client.post(
                        "/api/auth/signin",
                        json=signin(f"{uuid.uuid4().hex}@e.com"),
                        headers=spoofed(1 + n % 2),
                    )
                ).status_code
                for n in range(10)
            ]
        assert codes[:8] == [503] * 8  # two clients behind the proxy, four each
        assert codes[8:] == [429, 429]
        assert {entry["client"] for entry in logs if entry["event"] == "rate_limited"} == {
            "203.0.113.1",
            "203.0.113.2",
        }


# -- shared by replicas: a real redis-server -------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A ``redis-server`` of this module's own on a free port (Debian's redis-server package;
    .ci/run installs it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_two_gateways_on_one_redis_share_the_limits(tight: Settings, redis_url: str) -> None:
    shared = tight.model_copy(update={"rate_limit_storage": SecretStr(redis_url)})
    first, second = RateLimits.from_settings(shared), RateLimits.from_settings(shared)
    try:
        email = f"{uuid.uuid4().hex}@example.com"
        await first.signin(client="198.51.100.7", email=email)
        await second.signin(client="198.51.100.8", email=email)
        with pytest.raises(TooManyRequests) as caught:
            await first.signin(client="198.51.100.9", email=email)
        assert 1 <= caught.value.retry_after <= 60
        await second.signin(client="198.51.100.9", email=f"{uuid.uuid4().hex}@example.com")
    finally:
        first.close()
        second.close()


async def test_a_shared_store_that_is_down_skips_the_limit_not_the_signin(
    tight: Settings,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = tight.model_copy(update={"rate_limit_storage": SecretStr(f"redis://127.0.0.1:{port}")})
    limits = RateLimits.from_settings(down)
    with capture_logs() as logs:
        for _ in range(3):
            await limits.signin(client="198.51.100.7", email="ada@example.com")
    limits.close()
    assert any(entry["event"] == "rate_limit_store_unavailable" for entry in logs)


def test_storage_uris_take_the_asyncio_scheme() -> None:
    assert storage_uri("memory://") == "async+memory://"
    assert storage_uri("redis://r:6379") == "async+redis://r:6379"
    assert storage_uri("async+valkey://v:6379") == "async+valkey://v:6379"
