"""Every user pattern over real TCP against a real database, with the tutorial's payloads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from argon2 import PasswordHasher
from vidmesh.contracts import HEALTH
from vidmesh.contracts.user import CREATE, FIND_ONE_BY_EMAIL, FIND_ONE_BY_ID, VALIDATE, Credentials
from vidmesh.kit.db import Database
from vidmesh.transport import RemoteError, TcpClient

from vidmesh_user.errors import InvalidCredentials
from vidmesh_user.handlers import UserHandlers
from vidmesh_user.repository import UserRepository
from vidmesh_user.security import Passwords

PASSWORD = "Password1!"
BAD_CREDENTIALS = {
    "statusCode": 401,
    "message": "Invalid email or password",
    "error": "Unauthorized",
}


async def remote_error(client: TcpClient, pattern: Any, data: Any) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        await client.send(pattern, data)
    return caught.value


async def test_create_answers_an_id_that_find_one_by_email_finds_from_a_bare_string(
    client: TcpClient, email: str
) -> None:
    created = await client.send(CREATE, {"email": email, "password": PASSWORD})

    assert uuid.UUID(created["id"])
    assert await client.send(FIND_ONE_BY_EMAIL, email) == {"id": created["id"]}


async def test_find_one_by_email_of_an_unknown_email_answers_id_null(
    client: TcpClient, email: str
) -> None:
    assert await client.send(FIND_ONE_BY_EMAIL, email) == {"id": None}


async def test_emails_are_stored_stripped_and_lower_cased(client: TcpClient, email: str) -> None:
    created = await client.send(CREATE, {"email": f"  {email.upper()} ", "password": PASSWORD})

    assert await client.send(FIND_ONE_BY_EMAIL, email) == created
    found = await client.send(FIND_ONE_BY_ID, {"id": created["id"]})
    assert found["email"] == email


async def test_find_one_by_email_with_an_object_payload_answers_400(client: TcpClient) -> None:
    error = await remote_error(client, FIND_ONE_BY_EMAIL, {"email": "a@example.com"})

    assert error.status_code == 400


async def test_create_with_a_taken_email_answers_409_whatever_its_case(
    client: TcpClient, email: str
) -> None:
    await client.send(CREATE, {"email": email, "password": PASSWORD})

    error = await remote_error(client, CREATE, {"email": email.upper(), "password": "other"})

    assert error.error == {
        "statusCode": 409,
        "message": "Email already registered",
        "error": "Conflict",
    }


async def test_concurrent_creates_of_one_email_make_one_user_and_409s(
    client: TcpClient, email: str
) -> None:
    calls = [client.send(CREATE, {"email": email, "password": PASSWORD}) for _ in range(4)]

    results = await asyncio.gather(*calls, return_exceptions=True)

    created = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, RemoteError) and r.status_code == 409]
    assert (len(created), len(conflicts)) == (1, 3)
    assert await client.send(FIND_ONE_BY_EMAIL, email) == created[0]


@pytest.mark.parametrize("bad_email", ["no-at-sign.example.com", "a b@example.com", "a@localhost"])
async def test_create_with_a_malformed_email_answers_400(client: TcpClient, bad_email: str) -> None:
    error = await remote_error(client, CREATE, {"email": bad_email, "password": PASSWORD})

    assert error.error == {
        "statusCode": 400,
        "message": "Invalid email address",
        "error": "Bad Request",
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": 12345},
        {"email": "a@example.com", "password": "x" * 129},
        "a@example.com",
        None,
    ],
    ids=["no-password", "empty-password", "number-password", "long-password", "string", "null"],
)
async def test_create_with_a_bad_payload_answers_400(client: TcpClient, payload: Any) -> None:
    error = await remote_error(client, CREATE, payload)

    assert error.status_code == 400
    assert error.error["error"] == "Bad Request"


async def test_validate_with_the_right_password_answers_the_id(
    client: TcpClient, email: str
) -> None:
    created = await client.send(CREATE, {"email": email, "password": PASSWORD})

    assert await client.send(VALIDATE, {"email": email.upper(), "password": PASSWORD}) == created


async def test_validate_with_a_wrong_password_answers_401(client: TcpClient, email: str) -> None:
    await client.send(CREATE, {"email": email, "password": PASSWORD})

    error = await remote_error(client, VALIDATE, {"email": email, "password": "Password2!"})

    assert error.error == BAD_CREDENTIALS


async def test_validate_with_an_unknown_email_answers_401(client: TcpClient, email: str) -> None:
    error = await remote_error(client, VALIDATE, {"email": email, "password": PASSWORD})

    assert error.error == BAD_CREDENTIALS


async def test_unknown_email_and_wrong_password_get_identical_answers(
    client: TcpClient, email: str
) -> None:
    await client.send(CREATE, {"email": email, "password": PASSWORD})

    wrong_password = await remote_error(client, VALIDATE, {"email": email, "password": "nope"})
    unknown_email = await remote_error(
        client, VALIDATE, {"email": f"other-{email}", "password": "nope"}
    )

    assert unknown_email.error == wrong_password.error == BAD_CREDENTIALS


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting its checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=19456, parallelism=1)
        self.checks = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.checks += 1
        return bool(super().verify(hash, password))


async def test_an_unknown_email_costs_one_password_check_as_a_wrong_password_does(
    database: Database, email: str
) -> None:
    hasher = CountingHasher()
    handlers = UserHandlers(database, UserRepository(), Passwords(hasher))
    await handlers.create(_credentials(email, PASSWORD))

    with pytest.raises(InvalidCredentials):
        await handlers.validate(_credentials(email, "wrong"))
    with pytest.raises(InvalidCredentials):
        await handlers.validate(_credentials(f"other-{email}", "wrong"))

    assert hasher.checks == 2


async def test_an_unknown_email_takes_about_as_long_as_a_wrong_password(
    client: TcpClient, email: str
) -> None:
    await client.send(CREATE, {"email": email, "password": PASSWORD})

    wrong_password = await _median_seconds(client, {"email": email, "password": "nope"})
    unknown_email = await _median_seconds(client, {"email": f"x-{email}", "password": "nope"})

    # Loose bounds (a shared machine is noisy); without the dummy check the unknown email
    # answers in about 1 ms against tens of milliseconds.
    assert unknown_email > wrong_password / 3


async def test_validate_rehashes_a_hash_made_with_weaker_parameters(
    database: Database, email: str
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    repository = UserRepository()
    async with database.transaction() as session:
        await repository.insert(session, email=email, password_hash=weak.hash(PASSWORD))
    handlers = UserHandlers(database, repository, Passwords())

    await handlers.validate(_credentials(email, PASSWORD))

    async with database.transaction() as session:
        user = await repository.by_email(session, email)
    assert user is not None
    assert "m=19456,t=2,p=1" in user.password_hash
    assert await handlers.validate(_credentials(email, PASSWORD))


async def test_find_one_by_id_answers_the_user(client: TcpClient, email: str) -> None:
    created = await client.send(CREATE, {"email": email, "password": PASSWORD})

    found = await client.send(FIND_ONE_BY_ID, {"id": created["id"]})

    assert set(found) == {"id", "email", "createdAt"}
    assert (found["id"], found["email"]) == (created["id"], email)


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_find_one_by_id_of_an_unknown_id_answers_404(client: TcpClient, user_id: str) -> None:
    error = await remote_error(client, FIND_ONE_BY_ID, {"id": user_id})

    assert error.error == {"statusCode": 404, "message": "User not found", "error": "Not Found"}


async def test_health_answers_ok_with_the_database_checked(client: TcpClient) -> None:
    assert await client.send(HEALTH) == {
        "service": "user",
        "ok": True,
        "checks": {"database": True},
    }


def _credentials(email: str, password: str) -> Credentials:
    return Credentials(email=email, password=password)


async def _median_seconds(client: TcpClient, credentials: dict[str, str], runs: int = 5) -> float:
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(runs):
        started = loop.time()
        with pytest.raises(RemoteError):
            await client.send(VALIDATE, credentials)
        times.append(loop.time() - started)
    return sorted(times)[runs // 2]
