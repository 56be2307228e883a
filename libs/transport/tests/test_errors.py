"""The error tree: what handlers raise and what callers receive."""

from typing import Any

import pytest
from vidmesh.transport.errors import (
    CloseReason,
    ConnectionLost,
    FrameError,
    PayloadValidationError,
    RemoteError,
    RequestTimeout,
    RpcError,
    ServiceUnavailable,
    TransportError,
    status_error,
)

# -- RpcError -------------------------------------------------------------------------------


def test_rpc_error_status_has_nests_http_exception_shape() -> None:
    error = RpcError.status(404, "Video not found")
    assert error.error == {"statusCode": 404, "message": "Video not found", "error": "Not Found"}


def test_rpc_error_status_uses_the_http_reason_phrase() -> None:
    assert RpcError.status(409, "taken").error["error"] == "Conflict"


def test_rpc_error_status_of_an_unknown_code_says_error() -> None:
    assert RpcError.status(499, "gone").error["error"] == "Error"


def test_rpc_error_status_adds_extra_fields() -> None:
    error = RpcError.status(400, "bad", errors=[{"field": "id"}])
    assert error.error["errors"] == [{"field": "id"}]


def test_rpc_error_status_keeps_a_list_message() -> None:
    assert RpcError.status(400, ["a", "b"]).error["message"] == ["a", "b"]


def test_rpc_error_status_is_an_rpc_error() -> None:
    assert type(RpcError.status(500, "x")) is RpcError


def test_rpc_error_status_of_a_subclass_is_that_subclass() -> None:
    class VideoError(RpcError):
        pass

    assert type(VideoError.status(404, "x")) is VideoError


def test_rpc_error_text_is_the_message_of_a_structured_error() -> None:
    assert str(RpcError.status(404, "Video not found")) == "Video not found"


def test_rpc_error_keeps_a_plain_error_as_given() -> None:
    error = RpcError("plain text")
    assert (error.error, str(error)) == ("plain text", "plain text")


def test_rpc_error_with_a_dict_without_message_keeps_the_dict() -> None:
    assert RpcError({"code": 7}).error == {"code": 7}


def test_status_error_builds_the_body_alone() -> None:
    assert status_error(403, "no") == {"statusCode": 403, "message": "no", "error": "Forbidden"}


def test_payload_validation_error_is_a_bad_request_rpc_error() -> None:
    problems = [{"field": "video_id", "message": "Field required"}]
    error = PayloadValidationError("invalid payload: video_id: Field required", problems)
    assert isinstance(error, RpcError)
    assert error.error == {
        "statusCode": 400,
        "message": "invalid payload: video_id: Field required",
        "error": "Bad Request",
        "errors": problems,
    }


# -- RemoteError ----------------------------------------------------------------------------


def test_remote_error_status_code_of_a_structured_error() -> None:
    assert RemoteError({"statusCode": 404, "message": "x"}).status_code == 404


@pytest.mark.parametrize(
    "error",
    [
        "There is no matching message handler defined in the remote service.",
        {"message": "no code"},
        {"statusCode": "404"},
        {"statusCode": None},
        {"statusCode": True},
        ["statusCode", 404],
        None,
    ],
)
def test_remote_error_without_an_integer_status_code_has_none(error: Any) -> None:
    assert RemoteError(error).status_code is None


def test_remote_error_message_of_a_structured_error() -> None:
    assert RemoteError({"statusCode": 404, "message": "Video not found"}).message == (
        "Video not found"
    )


def test_remote_error_message_of_a_plain_error_is_its_text() -> None:
    assert RemoteError("Internal server error").message == "Internal server error"


def test_remote_error_message_of_a_dict_without_message_is_the_dict() -> None:
    assert RemoteError({"code": 7}).message == "{'code': 7}"


def test_remote_error_message_is_text_even_for_a_list_message() -> None:
    assert RemoteError({"message": ["a", "b"]}).message == "['a', 'b']"


def test_remote_error_keeps_the_error_and_pattern_as_received() -> None:
    body = {"statusCode": 400, "message": "bad"}
    error = RemoteError(body, pattern={"cmd": "get"})
    assert (error.error, error.pattern) == (body, {"cmd": "get"})


def test_remote_error_text_names_the_pattern() -> None:
    assert "video.get" in str(RemoteError("boom", pattern="video.get"))


# -- the tree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RpcError("x"),
        RemoteError("x"),
        RequestTimeout(),
        ServiceUnavailable(),
        ConnectionLost(),
        FrameError(CloseReason.INVALID_JSON, "x"),
    ],
)
def test_every_error_is_a_transport_error(error: Exception) -> None:
    assert isinstance(error, TransportError)


def test_connection_lost_is_service_unavailable() -> None:
    assert issubclass(ConnectionLost, ServiceUnavailable)


def test_frame_error_keeps_reason_and_detail() -> None:
    error = FrameError(CloseReason.FRAME_TOO_LARGE, "17 > 16 characters")
    assert (error.reason, error.detail) == (CloseReason.FRAME_TOO_LARGE, "17 > 16 characters")


def test_frame_error_text_is_reason_then_detail() -> None:
    assert str(FrameError(CloseReason.INVALID_JSON, "x")) == "invalid_json: x"
