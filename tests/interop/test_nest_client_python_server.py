"""A real NestJS ClientProxy (``nestpeer/client.js``) calling a vidmesh TCP server.

The vidmesh server runs in the test's event loop; the Nest client is an asyncio subprocess, so
the server keeps answering while the test waits for the client's results.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel
from vidmesh.devstack.nest import run_nest_client
from vidmesh.transport import Router, RpcError
from vidmesh.transport.testing import serve_tcp

pytestmark = pytest.mark.interop

MIXED_CASE = {"b": "x", "A": "y", "a": "z", "B": "w"}
NO_HANDLER = "There is no matching message handler defined in the remote service."
MiB = 1024 * 1024


def send(pattern: Any, data: Any) -> dict[str, Any]:
    return {"kind": "send", "pattern": pattern, "data": data}


def stream(pattern: Any, data: Any) -> dict[str, Any]:
    return {"kind": "stream", "pattern": pattern, "data": data}


def emit(pattern: Any, data: Any) -> dict[str, Any]:
    return {"kind": "emit", "pattern": pattern, "data": data}


class Upload(BaseModel):
    title: str
    seconds: int


@dataclass
class PythonService:
    """A vidmesh server on a loopback port and what its event handlers received."""

    port: int
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    async def next_event(self, timeout: float = 5.0) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def nest(self, *calls: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ``calls`` with a Nest client against this service."""
        return await run_nest_client(self.port, calls)


def build_router(events: asyncio.Queue[tuple[str, Any]]) -> Router:
    router = Router()

    @router.message("echo")
    async def echo(data: Any) -> Any:
        return data

    @router.message({"cmd": "sum"})
    def add(numbers: list[int]) -> int:
        return sum(numbers)

    @router.message(MIXED_CASE)
    def mixed_case() -> str:
        return "mixed-case pattern reached"

    @router.message({"cmd": "upload"})
    async def upload(video: Upload) -> dict[str, Any]:
        return {"title": video.title, "minutes": video.seconds / 60}

    @router.message({"cmd": "notFound"})
    async def not_found(thing: int) -> None:
        raise RpcError.status(404, f"thing {thing} not found")

    @router.message({"cmd": "crash"})
    def crash() -> None:
        raise RuntimeError("kaboom")

    @router.message({"cmd": "count"})
    async def count(n: int) -> AsyncIterator[int]:
        for number in range(n):
            await asyncio.sleep(0)
            yield number

    @router.message({"cmd": "letters"})
    def letters(word: str) -> Iterator[str]:
        yield from word

    @router.message({"cmd": "countThenFail"})
    async def count_then_fail(n: int) -> AsyncIterator[int]:
        for number in range(n):
            yield number
        raise RpcError.status(409, f"stopped after {n}")

    @router.event("recorded")
    async def recorded(data: Any) -> None:
        await events.put(("recorded", data))

    @router.event({"kind": "event", **MIXED_CASE})
    def recorded_mixed_case(data: Any) -> None:
        events.put_nowait(("mixed-case", data))

    return router


@pytest.fixture
async def python_service() -> AsyncIterator[PythonService]:
    service = PythonService(port=0)
    async with serve_tcp(build_router(service.events)) as served:
        service.port = served.port
        yield service


# -- requests and patterns -------------------------------------------------------------------


async def test_nest_client_gets_answer_from_python_string_pattern_handler(
    python_service: PythonService,
) -> None:
    payload = {"id": 7, "tags": ["a", "b"], "nested": {"ok": True, "none": None, "ratio": 0.5}}
    assert await python_service.nest(send("echo", payload)) == [{"ok": payload}]


async def test_nest_client_gets_answer_from_python_object_pattern_handler(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(
        send({"cmd": "sum"}, [1, 2, 3, 4]),
        send({"cmd": "upload"}, {"title": "cats", "seconds": 90}),
    )
    assert results == [{"ok": 10}, {"ok": {"title": "cats", "minutes": 1.5}}]


async def test_nest_client_reaches_python_mixed_case_pattern_handler_in_any_key_order(
    python_service: PythonService,
) -> None:
    orders = [
        ("b", "A", "a", "B"),
        ("a", "A", "b", "B"),
        ("B", "b", "A", "a"),
        ("A", "B", "a", "b"),
    ]
    results = await python_service.nest(
        *(send({key: MIXED_CASE[key] for key in order}, {}) for order in orders),
        send({"b": "x", "A": "y", "a": "z", "B": "W"}, {}),  # differs in case only
    )
    assert results == [{"ok": "mixed-case pattern reached"}] * len(orders) + [{"err": NO_HANDLER}]


async def test_korean_and_emoji_payloads_from_nest_client_round_trip_through_python_handler(
    python_service: PythonService,
) -> None:
    # One connection: a frame length counted in anything but UTF-16 units would desynchronise
    # Nest's decoder, and every answer after the first would be wrong or missing.
    payloads = [
        "동영상 업로드 완료 🎬",
        {"제목": "고양이 🐱", "태그": ["귀여움", "😺"], "조회수": 12},
        "👩\u200d👩\u200d👧\u200d👦" * 10,
        "𝄞 and 한글 and 😀😀",
        "plain ascii afterwards",
    ]
    results = await python_service.nest(*(send("echo", payload) for payload in payloads))
    assert results == [{"ok": payload} for payload in payloads]


async def test_nest_client_concurrent_requests_each_get_their_own_answer_from_python(
    python_service: PythonService,
) -> None:
    texts = [f"{index}: 안녕 🎬 " * (index % 7 + 1) for index in range(200)]
    results = await python_service.nest(
        {"kind": "parallel", "calls": [send("echo", text) for text in texts]}
    )
    assert results == [{"ok": [{"ok": text} for text in texts]}]


async def test_one_megabyte_payloads_from_nest_client_round_trip_through_python_handler(
    python_service: PythonService,
) -> None:
    ascii_blob = "x" * MiB
    korean_blob = "가나다🎬" * (MiB // 13 + 1)
    assert len(korean_blob.encode()) >= MiB
    results = await python_service.nest(
        send("echo", {"blob": ascii_blob}),
        send("echo", {"blob": korean_blob}),
        send({"cmd": "sum"}, [2, 3]),  # the connection is still in step after the big frames
    )
    assert results == [{"ok": {"blob": ascii_blob}}, {"ok": {"blob": korean_blob}}, {"ok": 5}]


# -- errors ----------------------------------------------------------------------------------


async def test_nest_client_receives_structured_error_from_python_handler(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(send({"cmd": "notFound"}, 7))
    assert results == [
        {"err": {"statusCode": 404, "message": "thing 7 not found", "error": "Not Found"}}
    ]


async def test_nest_client_receives_validation_error_from_python_handler_as_structured_400(
    python_service: PythonService,
) -> None:
    [result] = await python_service.nest(send({"cmd": "upload"}, {"title": "cats"}))
    error = result["err"]
    assert error["statusCode"] == 400
    assert error["error"] == "Bad Request"
    assert error["errors"] == [{"field": "seconds", "message": "Field required"}]


async def test_nest_client_receives_generic_error_when_python_handler_crashes(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(send({"cmd": "crash"}, {}), send("echo", "after"))
    assert results == [
        {"err": {"status": "error", "message": "Internal server error"}},
        {"ok": "after"},
    ]


async def test_nest_client_receives_no_handler_error_for_unknown_python_pattern(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(
        send({"cmd": "no-such-command"}, {}), send("no-such-pattern", 1), send("echo", "after")
    )
    assert results == [{"err": NO_HANDLER}, {"err": NO_HANDLER}, {"ok": "after"}]


# -- streams ---------------------------------------------------------------------------------


async def test_nest_client_collects_every_item_of_python_async_generator_stream(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(
        stream({"cmd": "count"}, 25),
        stream({"cmd": "count"}, 0),
        stream({"cmd": "letters"}, "한🎬a"),
    )
    assert results == [{"ok": list(range(25))}, {"ok": []}, {"ok": ["한", "🎬", "a"]}]


async def test_nest_client_send_to_python_stream_resolves_to_its_last_item(
    python_service: PythonService,
) -> None:
    assert await python_service.nest(send({"cmd": "count"}, 5)) == [{"ok": 4}]


async def test_nest_client_stream_from_python_fails_with_structured_error_raised_midway(
    python_service: PythonService,
) -> None:
    results = await python_service.nest(stream({"cmd": "countThenFail"}, 3))
    assert results == [
        {"err": {"statusCode": 409, "message": "stopped after 3", "error": "Conflict"}}
    ]


# -- events ----------------------------------------------------------------------------------


async def test_nest_emit_runs_python_string_pattern_event_handler(
    python_service: PythonService,
) -> None:
    payload = {"video": 7, "text": "이벤트 🎉"}
    assert await python_service.nest(emit("recorded", payload)) == [{"ok": None}]
    assert await python_service.next_event() == ("recorded", payload)


async def test_nest_emit_with_mixed_case_object_pattern_runs_python_event_handler(
    python_service: PythonService,
) -> None:
    # Nest's client sends an event's routing key string (Nest's transformPatternToRoute), not
    # the object; vidmesh must find the handler registered with the object pattern. (Both sides
    # re-canonicalise a parsed key, so the exact string is checked in test_patterns_vs_nest.)
    results = await python_service.nest(
        emit({"B": "w", "kind": "event", "a": "z", "A": "y", "b": "x"}, "first"),
        emit({"kind": "event", **MIXED_CASE}, "second"),
    )
    assert results == [{"ok": None}, {"ok": None}]
    assert await python_service.next_event() == ("mixed-case", "first")
    assert await python_service.next_event() == ("mixed-case", "second")
