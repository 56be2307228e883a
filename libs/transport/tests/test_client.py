"""TcpClient against a real TcpServer: pipelining, timeouts, errors, events, streams, headers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs
from vidmesh.transport import (
    ClientOptions,
    ConnectionLost,
    Context,
    MessageContext,
    OutgoingCall,
    RemoteError,
    RequestTimeout,
    RpcError,
    ServerOptions,
    ServiceUnavailable,
    TcpClient,
    current_context,
    log_messages,
)
from vidmesh.transport.middleware import CallNext, ClientCallNext
from vidmesh.transport.testing import ServedTcp, echo_router, serve_tcp


@pytest.fixture
async def served() -> AsyncIterator[ServedTcp]:
    async with serve_tcp(echo_router()) as served:
        yield served


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_pipelined_calls_on_one_connection_are_matched_by_id() -> None:
    calls = 40
    finished: list[Any] = []
    turn = [asyncio.Event() for _ in range(calls + 1)]
    release_first = asyncio.Event()
    router = echo_router()

    @router.message("in_turn")
    async def in_turn(index: int, context: Context) -> list[Any]:
        # Call i answers only after call i+1 did: the answers come back in reverse order.
        await turn[index + 1].wait()
        finished.append(index)
        turn[index].set()
        return [index, context.peer]

    @router.message("held")
    async def held(context: Context) -> list[Any]:
        await release_first.wait()
        finished.append("held")
        return ["held", context.peer]

    async with serve_tcp(router) as served:
        slow = asyncio.ensure_future(served.client.send("held"))
        fast = asyncio.ensure_future(
            asyncio.gather(*(served.client.send("in_turn", i) for i in range(calls)))
        )
        turn[calls].set()
        answers = await fast
        assert not slow.done()  # sent first, still unanswered
        release_first.set()
        held_answer = await slow

    assert [index for index, _ in answers] == list(range(calls))
    assert held_answer[0] == "held"
    assert finished == [*reversed(range(calls)), "held"]  # answered out of order
    assert len({peer for _, peer in [*answers, held_answer]}) == 1  # all on one connection


async def test_a_call_that_exceeds_its_timeout_raises_request_timeout() -> None:
    release = asyncio.Event()
    router = echo_router()

    @router.message("late")
    async def late() -> str:
        await release.wait()
        return "too late"

    async with serve_tcp(router) as served:
        with pytest.raises(RequestTimeout):
            await served.client.send("late", timeout=0.1)
        assert served.client.in_flight == 0
        release.set()


async def test_a_late_answer_after_a_timeout_is_dropped_harmlessly() -> None:
    answered = asyncio.Event()
    release = asyncio.Event()
    router = echo_router()

    @router.message("late")
    async def late() -> str:
        await release.wait()
        answered.set()
        return "too late"

    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    try:
        async with serve_tcp(router) as served:
            peer = await served.client.send("peer")
            with capture_logs() as logs:
                with pytest.raises(RequestTimeout):
                    await served.client.send("late", timeout=0.05)
                release.set()
                await answered.wait()
                # The late answer arrives on the connection; the next calls are unaffected.
                assert await served.client.send("echo", "next") == "next"
                assert await served.client.send("peer") == peer
    finally:
        asyncio.get_running_loop().set_exception_handler(None)
    assert loop_errors == []
    assert logs == []


async def test_a_call_fails_with_service_unavailable_when_nothing_listens() -> None:
    options = ClientOptions(connect_attempts=2, reconnect_backoff=0.01)
    async with TcpClient("127.0.0.1", unused_port(), options=options) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.send("echo", 1)
    assert not isinstance(caught.value, ConnectionLost)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_a_closed_client_refuses_to_call(served: ServedTcp) -> None:
    assert await served.client.send("echo", 1) == 1
    await served.client.close()
    with pytest.raises(ServiceUnavailable):
        await served.client.send("echo", 2)


async def test_remote_error_carries_the_err_the_handler_raised() -> None:
    router = echo_router()

    @router.message("find")
    async def find(video_id: str) -> None:
        raise RpcError.status(404, f"Video {video_id} not found")

    @router.message("plain")
    def plain() -> None:
        raise RpcError("just a string")

    async with serve_tcp(router) as served:
        with pytest.raises(RemoteError) as caught:
            await served.client.send("find", "v42")
        assert caught.value.error == {
            "statusCode": 404,
            "message": "Video v42 not found",
            "error": "Not Found",
        }
        assert caught.value.status_code == 404
        assert caught.value.message == "Video v42 not found"
        with pytest.raises(RemoteError) as caught:
            await served.client.send("plain")
        assert caught.value.error == "just a string"
        assert caught.value.status_code is None


async def test_an_unexpected_handler_exception_is_an_internal_error_and_the_connection_stays() -> (
    None
):
    router = echo_router()

    @router.message("boom")
    async def boom() -> None:
        raise ValueError("secret detail")

    async with serve_tcp(router) as served:
        peer = await served.client.send("peer")
        with capture_logs() as logs, pytest.raises(RemoteError) as caught:
            await served.client.send("boom")
        assert caught.value.error == {"status": "error", "message": "Internal server error"}
        assert "secret" not in str(caught.value)
        assert [entry["event"] for entry in logs] == ["handler_failed"]
        assert await served.client.send("peer") == peer


async def test_an_emitted_event_reaches_the_event_handler() -> None:
    received: asyncio.Future[tuple[Any, dict[str, str]]] = (
        asyncio.get_running_loop().create_future()
    )
    router = echo_router()

    @router.event("video.uploaded")
    async def on_uploaded(data: dict[str, Any], context: Context) -> None:
        received.set_result((data, context.headers))

    async with serve_tcp(router) as served:
        await served.client.emit("video.uploaded", {"id": "v1"}, headers={"x-tenant": "t1"})
        data, headers = await asyncio.wait_for(received, 2)
    assert data == {"id": "v1"}
    assert headers == {"x-tenant": "t1"}


async def test_every_handler_of_an_event_runs() -> None:
    seen: list[str] = []
    both = asyncio.Event()
    router = echo_router()

    def record(name: str) -> None:
        seen.append(name)
        if len(seen) == 2:
            both.set()

    @router.event("ping")
    def first(data: Any) -> None:
        record("first")

    @router.event("ping")
    async def second(data: Any) -> None:
        record("second")

    async with serve_tcp(router) as served:
        await served.client.emit("ping", 1)
        await asyncio.wait_for(both.wait(), 2)
    assert sorted(seen) == ["first", "second"]


async def test_stream_yields_the_items_of_an_async_generator_handler() -> None:
    router = echo_router()

    @router.message("count")
    async def count(up_to: int) -> AsyncIterator[int]:
        for number in range(up_to):
            await asyncio.sleep(0)
            yield number

    async with serve_tcp(router) as served:
        items = [item async for item in served.client.stream("count", 5)]
        assert items == [0, 1, 2, 3, 4]
        assert await served.client.send("count", 3) == 2  # send() gives the last item


async def test_stream_yields_the_items_of_a_sync_generator_handler() -> None:
    router = echo_router()

    @router.message("letters")
    def letters(word: str) -> Iterator[str]:
        yield from word

    async with serve_tcp(router) as served:
        assert [item async for item in served.client.stream("letters", "abc")] == list("abc")


async def test_stream_raises_remote_error_when_the_generator_fails_midway() -> None:
    router = echo_router()

    @router.message("fragile")
    async def fragile() -> AsyncIterator[int]:
        yield 1
        raise RpcError.status(409, "conflict")

    async with serve_tcp(router) as served:
        items: list[int] = []

        async def read_all() -> None:
            async for item in served.client.stream("fragile"):
                items.append(item)

        with pytest.raises(RemoteError) as caught:
            await read_all()
        assert items == [1]
        assert caught.value.status_code == 409


async def test_headers_passed_to_send_reach_the_handlers_context() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    router = echo_router()

    @router.message("trace")
    async def trace(context: Context) -> dict[str, Any]:
        assert current_context() is context
        assert isinstance(context, MessageContext)
        return {"headers": context.headers, "route": context.route, "id": context.id}

    async with serve_tcp(router) as served:
        seen = await served.client.send("trace", headers={"traceparent": traceparent})
    assert seen["headers"] == {"traceparent": traceparent}
    assert seen["route"] == "trace"
    assert seen["id"] is not None


async def test_client_middleware_can_add_headers_and_sees_results() -> None:
    seen: list[tuple[str, Any]] = []

    async def tenant(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        call.headers["x-tenant"] = "acme"
        result = await call_next(call)
        seen.append((call.kind.value, result))
        return result

    router = echo_router()

    @router.message("whoami")
    async def whoami(context: Context) -> str:
        return context.headers.get("x-tenant", "nobody")

    async with serve_tcp(router, client_middleware=[tenant]) as served:
        assert await served.client.send("whoami") == "acme"
        assert await served.client.send("echo", [1, 2]) == [1, 2]
    assert seen == [("request", "acme"), ("request", [1, 2])]


async def test_server_middleware_wraps_handlers_in_order() -> None:
    order: list[str] = []

    async def outer(context: MessageContext, call_next: CallNext) -> Any:
        order.append(f"outer>{context.route}")
        result = await call_next(context)
        order.append("outer<")
        return {"wrapped": result}

    async def inner(context: MessageContext, call_next: CallNext) -> Any:
        order.append("inner>")
        result = await call_next(context)
        order.append("inner<")
        return result

    async with serve_tcp(echo_router(), middleware=[log_messages, outer, inner]) as served:
        with capture_logs() as logs:
            assert await served.client.send("echo", 5) == {"wrapped": 5}
    assert order == ["outer>echo", "inner>", "inner<", "outer<"]
    [handled] = [entry for entry in logs if entry["event"] == "message_handled"]
    assert handled["route"] == "echo"
    assert handled["transport"] == "tcp"
    assert handled["duration_ms"] >= 0


async def test_log_messages_records_a_failed_message() -> None:
    router = echo_router()

    @router.message("deny")
    def deny() -> None:
        raise RpcError.status(403, "no")

    async with serve_tcp(router, middleware=[log_messages]) as served:
        with capture_logs() as logs, pytest.raises(RemoteError):
            await served.client.send("deny")
    [failed] = [entry for entry in logs if entry["event"] == "message_failed"]
    assert failed["route"] == "deny"
    assert failed["error"] == "RpcError"


async def test_calls_in_flight_fail_with_connection_lost_when_the_server_goes_away() -> None:
    started = asyncio.Event()
    router = echo_router()

    @router.message("hang")
    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    async with serve_tcp(router, options=ServerOptions(drain_timeout=0.05)) as served:
        calls = [asyncio.ensure_future(served.client.send("hang")) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 2)
        for connection in list(served.server.connections):
            connection.abort()
        for call in calls:
            with pytest.raises(ConnectionLost):
                await call
        assert served.client.in_flight == 0
        assert await served.client.send("echo", "reconnected") == "reconnected"


async def test_answers_that_match_no_call_are_ignored() -> None:
    served_all = asyncio.Event()

    async def answer_oddly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"}")
        for packet in (
            b'{"id":[1],"response":"a list id"}',
            b'{"id":{"a":1},"response":"an object id"}',
            b'{"id":"999","response":"an unknown id","isDisposed":true}',
            b"[1,2]",
            b'{"id":"1","response":"mine","isDisposed":true}',
        ):
            writer.write(b"%d#%b" % (len(packet), packet))
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()
        served_all.set()

    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    server = await asyncio.start_server(answer_oddly, "127.0.0.1", 0)
    try:
        async with server:
            async with TcpClient("127.0.0.1", server.sockets[0].getsockname()[1]) as client:
                assert await client.send("anything", timeout=2) == "mine"
            await asyncio.wait_for(served_all.wait(), 2)
    finally:
        asyncio.get_running_loop().set_exception_handler(None)
    assert loop_errors == []
