"""Bad input is never a 5xx (issue 11, item 7): control characters in emails, titles and file
names, and strings longer than their columns, are refused with 400 in the gateway's one error
shape, and by the services' contracts with an RPC error that says why."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from vidmesh.contracts import user as user_contract
from vidmesh.contracts import video as video_contract
from vidmesh.devstack.samples import sample_mp4
from vidmesh.devstack.system import RunningSystem

from tests.e2e.fixtures_api import PASSWORD, assert_error, sign_up, unique_email, upload
from tests.security.raw_tcp import call

CONTROLS = ["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85"]


@pytest.mark.parametrize("control", CONTROLS)
def test_a_control_character_in_an_email_is_a_400(gateway: httpx.Client, control: str) -> None:
    email = unique_email("ctl").replace("@", f"{control}@")
    signup = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
    assert_error(gateway.post("/api/auth/signup", json=signup), 400)
    signin = {"email": email, "password": PASSWORD}
    assert "control characters" in str(
        assert_error(gateway.post("/api/auth/signin", json=signin), 400)
    )


def test_a_nul_in_a_title_is_a_400_on_both_upload_paths(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    streamed = upload(gateway, account, sample_mp4(4096), title="My\x00video")
    assert "title" in str(assert_error(streamed, 400))
    start = gateway.post(
        "/api/videos/uploads", json={"filename": "clip.mp4", "size": 4096}, headers=account.auth
    )
    assert start.status_code == 201, start.text
    upload_id = start.json()["uploadId"]
    complete = gateway.post(
        f"/api/videos/uploads/{upload_id}/complete",
        json={"title": "My\x00video"},
        headers=account.auth,
    )
    assert "control characters" in str(assert_error(complete, 400))


def test_a_nul_in_a_file_name_is_a_400(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    start = gateway.post(
        "/api/videos/uploads", json={"filename": "clip\x00.mp4", "size": 4096}, headers=account.auth
    )
    assert "control characters" in str(assert_error(start, 400))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/signin", {"email": "a@" + "b" * 300 + ".com", "password": PASSWORD}),
        (
            "/api/auth/signup",
            {"email": "a@" + "b" * 300 + ".com", "password": PASSWORD, "passwordConfirm": PASSWORD},
        ),
        ("/api/auth/signin", {"email": "a@example.com", "password": "p" * 129}),
    ],
)
def test_strings_longer_than_their_columns_are_a_400(
    gateway: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    assert_error(gateway.post(path, json=body), 400)


def test_a_title_or_file_name_too_long_is_a_400(gateway: httpx.Client) -> None:
    account = sign_up(gateway)
    assert_error(upload(gateway, account, sample_mp4(4096), title="t" * 101), 400)
    start = gateway.post(
        "/api/videos/uploads", json={"filename": "f" * 256, "size": 4096}, headers=account.auth
    )
    assert_error(start, 400)


def rpc_error(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``err`` of an answer: a 400 with a message, never the internal error."""
    error = answer.get("err")
    assert isinstance(error, dict), answer
    assert error["statusCode"] == 400, error
    assert error["message"], error
    return error


@pytest.mark.parametrize(
    ("service", "pattern", "data"),
    [
        ("user", user_contract.CREATE, {"email": "nul\x00@example.com", "password": PASSWORD}),
        ("user", user_contract.VALIDATE, {"email": "nul\x00@example.com", "password": PASSWORD}),
        ("user", user_contract.FIND_ONE_BY_EMAIL, "nul\x00@example.com"),
        ("user", user_contract.FIND_ONE_BY_ID, {"id": "\x00"}),
        ("user", user_contract.CREATE, {"email": "a@" + "b" * 300, "password": PASSWORD}),
        (
            "video",
            video_contract.UPLOAD_START,
            {"userId": str(uuid.uuid4()), "filename": "clip\x00.mp4", "size": 10},
        ),
        (
            "video",
            video_contract.UPLOAD_FINISH,
            {"uploadId": str(uuid.uuid4()), "userId": str(uuid.uuid4()), "title": "a\x00b"},
        ),
        (
            "video",
            video_contract.UPLOAD_START,
            {"userId": "u" * 65, "filename": "clip.mp4", "size": 10},
        ),
        ("video", video_contract.FIND_ONE, {"id": "\x00" * 10}),
        ("analytics", {"cmd": "videoStats"}, {"id": "v" * 65}),
    ],
)
def test_the_services_contracts_refuse_them_with_an_rpc_error(
    system: RunningSystem, service: str, pattern: Any, data: Any
) -> None:
    error = rpc_error(asyncio.run(call(system, service, pattern, data)))
    assert error["message"] != "Internal server error"


def test_refused_values_never_reach_the_services_logs(system: RunningSystem) -> None:
    email = f"leak-{uuid.uuid4().hex[:8]}\x00@example.com"
    data = {"email": email, "password": PASSWORD}
    rpc_error(asyncio.run(call(system, "user", user_contract.CREATE, data)))
    assert not any(email.split("\x00")[0] in line for line in system.logs("user"))
