"""Domain errors reach the caller as Nest's structured error, with their status."""

from __future__ import annotations

import pytest
from vidmesh.kit.errors import ServiceError
from vidmesh.transport import RemoteError, Router
from vidmesh.transport.testing import serve_tcp


class GoneMissing(ServiceError):
    status_code = 404
    default_message = "Thing not found"


async def test_a_domain_error_arrives_with_its_status_and_message() -> None:
    router = Router()

    @router.message({"cmd": "find"})
    async def find(thing_id: str) -> None:
        raise GoneMissing()

    async with serve_tcp(router) as served:
        with pytest.raises(RemoteError) as caught:
            await served.client.send({"cmd": "find"}, "x")
    expected = {"statusCode": 404, "message": "Thing not found", "error": "Not Found"}
    assert caught.value.error == expected


def test_a_domain_error_may_carry_its_own_message() -> None:
    assert GoneMissing("no thing 7").error["message"] == "no thing 7"
