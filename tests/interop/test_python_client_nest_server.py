"""vidmesh's TcpClient calling a real NestJS TCP microservice (``nestpeer/server.js``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from vidmesh.transport import RemoteError, TcpClient

pytestmark = pytest.mark.interop

MIXED_CASE = {"b": "x", "A": "y", "a": "z", "B": "w"}
"""The keys of server.js's mixed-case message pattern; its event pattern adds kind: 'event'."""

NO_HANDLER = "There is no matching message handler defined in the remote service."
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MiB = 1024 * 1024


async def nest_events_until(client: TcpClient, expected: Any, timeout: float = 5.0) -> list[Any]:
    """Poll the Nest server's {cmd:'events'} until ``expected`` was recorded (or time is up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events: list[Any] = await client.send({"cmd": "events"}, 0)
        if expected in events or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.02)


def ascii_frames(sent: bytes) -> list[Any]:
    """Parse ``<length>#<json>`` frames of pure-ASCII traffic (there, length == bytes)."""
    text = sent.decode("ascii")
    packets = []
    while text:
        header, _, rest = text.partition("#")
        length = int(header)
        packets.append(json.loads(rest[:length]))
        text = rest[length:]
    return packets


# -- requests and patterns -------------------------------------------------------------------


async def test_python_client_gets_answer_from_nest_string_pattern_handler(
    nest_client: TcpClient,
) -> None:
    payload = {"id": 7, "tags": ["a", "b"], "nested": {"ok": True, "none": None, "ratio": 0.5}}
    assert await nest_client.send("echo", payload) == payload


async def test_python_client_gets_answer_from_nest_object_pattern_handler(
    nest_client: TcpClient,
) -> None:
    assert await nest_client.send({"cmd": "sum"}, [1, 2, 3, 4]) == 10


@pytest.mark.parametrize(
    "key_order",
    [("b", "A", "a", "B"), ("a", "A", "b", "B"), ("B", "b", "A", "a"), ("A", "B", "a", "b")],
)
async def test_nest_routes_mixed_case_object_pattern_from_python_in_any_key_order(
    nest_client: TcpClient, key_order: tuple[str, ...]
) -> None:
    pattern = {key: MIXED_CASE[key] for key in key_order}
    assert await nest_client.send(pattern, {}) == "mixed-case pattern reached"


async def test_nest_does_not_route_a_mixed_case_pattern_that_differs_only_in_case(
    nest_client: TcpClient,
) -> None:
    with pytest.raises(RemoteError) as caught:
        await nest_client.send({"b": "x", "A": "y", "a": "z", "B": "W"}, {})
    assert caught.value.error == NO_HANDLER


@pytest.mark.parametrize(
    ("text", "utf16_units"),
    [
        ("안녕하세요", 5),
        ("🎬", 2),
        ("동영상 🎬👩\u200d💻", 11),
        ("héllo wörld", 11),
        ("𝄞 and 한글 and 😀😀", 18),
    ],
)
async def test_nest_reports_javascript_string_length_of_korean_and_emoji_text(
    nest_client: TcpClient, text: str, utf16_units: int
) -> None:
    answer = await nest_client.send({"cmd": "length"}, text)
    assert answer == {"length": utf16_units, "text": text}


async def test_korean_and_emoji_payloads_round_trip_through_nest_on_one_connection(
    nest_client: TcpClient,
) -> None:
    # A frame length counted in anything but UTF-16 units would desynchronise the connection,
    # so every answer after the first would be wrong or missing.
    payloads = [
        "동영상 업로드 완료 🎬",
        {"제목": "고양이 🐱", "태그": ["귀여움", "😺"], "조회수": 12},
        "👩\u200d👩\u200d👧\u200d👦" * 10,
        "plain ascii afterwards",
    ]
    for payload in payloads:
        assert await nest_client.send("echo", payload) == payload


async def test_nest_answers_many_concurrent_requests_each_to_its_own_caller(
    nest_client: TcpClient,
) -> None:
    texts = [f"{index}: 안녕 🎬 " * (index % 7 + 1) for index in range(200)]
    answers = await asyncio.gather(*(nest_client.send("echo", text) for text in texts))
    assert answers == texts


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param("x" * MiB, id="ascii-1MiB"),
        pytest.param("가나다🎬" * (MiB // 13 + 1), id="korean-emoji-1MiB-utf8"),
    ],
)
async def test_one_megabyte_payload_round_trips_through_nest(
    nest_client: TcpClient, blob: str
) -> None:
    assert len(blob.encode()) >= MiB
    assert await nest_client.send("echo", {"blob": blob}) == {"blob": blob}
    # the connection is still in step after the big frames
    assert await nest_client.send({"cmd": "sum"}, [2, 3]) == 5


# -- errors ----------------------------------------------------------------------------------


async def test_python_client_receives_rpc_exception_from_nest_as_remote_error(
    nest_client: TcpClient,
) -> None:
    with pytest.raises(RemoteError) as caught:
        await nest_client.send({"cmd": "notFound"}, 7)
    assert caught.value.error == {
        "statusCode": 404,
        "message": "thing 7 not found",
        "error": "Not Found",
    }
    assert caught.value.status_code == 404
    assert caught.value.message == "thing 7 not found"


async def test_python_client_receives_generic_error_when_nest_handler_throws(
    nest_client: TcpClient,
) -> None:
    with pytest.raises(RemoteError) as caught:
        await nest_client.send({"cmd": "crash"}, {})
    assert caught.value.error == {"status": "error", "message": "Internal server error"}


async def test_python_client_receives_no_handler_error_for_unknown_nest_pattern(
    nest_client: TcpClient,
) -> None:
    with pytest.raises(RemoteError) as caught:
        await nest_client.send({"cmd": "no-such-command"}, {})
    assert caught.value.error == NO_HANDLER
    # the connection survives the error
    assert await nest_client.send("echo", "still here") == "still here"


# -- streams ---------------------------------------------------------------------------------


async def test_python_client_streams_every_item_of_nest_observable(
    nest_client: TcpClient,
) -> None:
    items = [item async for item in nest_client.stream({"cmd": "count"}, 25)]
    assert items == list(range(25))


async def test_python_client_stream_of_empty_nest_observable_ends_without_items(
    nest_client: TcpClient,
) -> None:
    assert [item async for item in nest_client.stream({"cmd": "count"}, 0)] == []


async def test_python_send_to_nest_observable_returns_its_last_item(
    nest_client: TcpClient,
) -> None:
    assert await nest_client.send({"cmd": "count"}, 5) == 4


# -- events ----------------------------------------------------------------------------------


async def test_python_emit_reaches_nest_string_pattern_event_handler(
    nest_client: TcpClient,
) -> None:
    marker = {"marker": uuid.uuid4().hex, "text": "이벤트 🎉"}
    await nest_client.emit("recorded", marker)
    assert marker in await nest_events_until(nest_client, marker)


async def test_python_emit_with_mixed_case_object_pattern_reaches_nest_event_handler(
    nest_client: TcpClient,
) -> None:
    # An event carries the sender's routing key string (vidmesh's route_of), not the object;
    # Nest JSON-parses it and must find the handler registered with the object pattern. (Both
    # sides re-canonicalise a parsed key, so the exact string is checked in test_patterns_vs_nest.)
    marker = uuid.uuid4().hex
    await nest_client.emit({"kind": "event", "B": "w", "a": "z", "A": "y", "b": "x"}, marker)
    assert {"mixedCase": marker} in await nest_events_until(nest_client, {"mixedCase": marker})


# -- vidmesh's extra packet field ------------------------------------------------------------


async def test_nest_server_answers_requests_and_events_carrying_vidmesh_headers(
    recording_proxy: Any,
) -> None:
    marker = uuid.uuid4().hex
    headers = {"traceparent": TRACEPARENT}
    async with TcpClient("127.0.0.1", recording_proxy.port) as client:
        answer = await client.send({"cmd": "sum"}, [1, 2, 3], headers=headers)
        await client.emit("recorded", marker, headers=headers)
        events = await nest_events_until(client, marker)
    assert answer == 6
    assert marker in events
    # ... and the frames Nest answered really carried the headers field
    packets = ascii_frames(bytes(recording_proxy.sent))
    request, event = packets[0], packets[1]
    assert request["pattern"] == {"cmd": "sum"}
    assert request["headers"] == headers
    assert "id" in request
    assert event == {"pattern": "recorded", "data": marker, "headers": headers}
