"""argon2id hashing: OWASP parameters, checks that never raise, rehash detection."""

from __future__ import annotations

from argon2 import PasswordHasher

from vidmesh_user.security import Passwords

PASSWORD = "Password1!"


async def test_a_hash_uses_argon2id_at_owasp_parameters_and_verifies_its_password() -> None:
    passwords = Passwords()

    password_hash = await passwords.hash(PASSWORD)

    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify(password_hash, PASSWORD) is True


async def test_two_hashes_of_one_password_differ_by_their_salt() -> None:
    passwords = Passwords()

    assert await passwords.hash(PASSWORD) != await passwords.hash(PASSWORD)


async def test_a_wrong_password_does_not_verify() -> None:
    passwords = Passwords()

    assert await passwords.verify(await passwords.hash(PASSWORD), "Password2!") is False


async def test_a_corrupt_hash_does_not_verify_and_needs_no_rehash() -> None:
    passwords = Passwords()

    assert await passwords.verify("not-a-hash", PASSWORD) is False
    assert passwords.needs_rehash("not-a-hash") is False


async def test_verify_nothing_returns_without_raising_for_any_password() -> None:
    await Passwords().verify_nothing(PASSWORD)


async def test_a_hash_made_with_weaker_parameters_needs_a_rehash() -> None:
    passwords = Passwords()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    assert passwords.needs_rehash(weak) is True
    assert passwords.needs_rehash(await passwords.hash(PASSWORD)) is False
