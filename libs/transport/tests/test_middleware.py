"""Server and client middleware chains."""

from typing import Any

import pytest
from vidmesh.transport.context import MessageContext
from vidmesh.transport.middleware import (
    CallKind,
    CallNext,
    ClientCallNext,
    OutgoingCall,
    chain_client,
    chain_server,
    log_calls,
    log_messages,
)


def message_context() -> MessageContext:
    return MessageContext(pattern="video.get", route="video.get", data={"id": 1}, id="1")


def outgoing() -> OutgoingCall:
    return OutgoingCall(kind=CallKind.REQUEST, pattern="video.get", data={"id": 1})


def server_recorder(name: str, trace: list[str]) -> Any:
    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        trace.append(f"{name} before")
        result = await call_next(context)
        trace.append(f"{name} after")
        return result

    return middleware


def client_recorder(name: str, trace: list[str]) -> Any:
    async def middleware(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        trace.append(f"{name} before")
        result = await call_next(call)
        trace.append(f"{name} after")
        return result

    return middleware


# -- server chain ---------------------------------------------------------------------------


async def test_server_chain_runs_first_middleware_first_and_sees_the_result_last() -> None:
    trace: list[str] = []

    async def innermost(context: MessageContext) -> str:
        trace.append("handler")
        return "result"

    chain = chain_server(
        [server_recorder("a", trace), server_recorder("b", trace), server_recorder("c", trace)],
        innermost,
    )
    assert await chain(message_context()) == "result"
    assert trace == ["a before", "b before", "c before", "handler", "c after", "b after", "a after"]


async def test_empty_server_chain_is_the_innermost_call() -> None:
    async def innermost(context: MessageContext) -> str:
        return "result"

    assert chain_server([], innermost) is innermost


async def test_server_middleware_may_answer_without_calling_next() -> None:
    called: list[bool] = []

    async def innermost(context: MessageContext) -> str:
        called.append(True)
        return "handler"

    async def refuse(context: MessageContext, call_next: CallNext) -> str:
        return "refused"

    assert await chain_server([refuse], innermost)(message_context()) == "refused"
    assert called == []


async def test_server_middleware_passes_the_context_it_is_given() -> None:
    seen: list[MessageContext] = []

    async def innermost(context: MessageContext) -> None:
        seen.append(context)

    context = message_context()
    await chain_server([server_recorder("a", [])], innermost)(context)
    assert seen == [context]


async def test_server_middleware_sees_the_handlers_exception() -> None:
    caught: list[Exception] = []

    async def innermost(context: MessageContext) -> None:
        raise KeyError("boom")

    async def catching(context: MessageContext, call_next: CallNext) -> Any:
        try:
            return await call_next(context)
        except KeyError as error:
            caught.append(error)
            raise

    with pytest.raises(KeyError):
        await chain_server([catching], innermost)(message_context())
    assert len(caught) == 1


async def test_log_messages_returns_the_handlers_result() -> None:
    async def innermost(context: MessageContext) -> str:
        return "result"

    assert await chain_server([log_messages], innermost)(message_context()) == "result"


async def test_log_messages_reraises_the_handlers_exception() -> None:
    async def innermost(context: MessageContext) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await chain_server([log_messages], innermost)(message_context())


# -- client chain ---------------------------------------------------------------------------


async def test_client_chain_runs_first_middleware_first_and_sees_the_result_last() -> None:
    trace: list[str] = []

    async def send(call: OutgoingCall) -> str:
        trace.append("send")
        return "answer"

    chain = chain_client([client_recorder("a", trace), client_recorder("b", trace)], send)
    assert await chain(outgoing()) == "answer"
    assert trace == ["a before", "b before", "send", "b after", "a after"]


async def test_empty_client_chain_is_the_innermost_call() -> None:
    async def send(call: OutgoingCall) -> str:
        return "answer"

    assert chain_client([], send) is send


async def test_client_middleware_headers_reach_the_send() -> None:
    sent: list[dict[str, str]] = []

    async def send(call: OutgoingCall) -> None:
        sent.append(dict(call.headers))

    async def tracing(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        call.headers["traceparent"] = "00-abc-def-01"
        return await call_next(call)

    await chain_client([tracing], send)(outgoing())
    assert sent == [{"traceparent": "00-abc-def-01"}]


async def test_later_client_middleware_sees_changes_of_earlier_ones() -> None:
    seen: list[Any] = []

    async def send(call: OutgoingCall) -> None: ...

    async def rewrite(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        call.data = {"id": 2}
        return await call_next(call)

    async def observe(call: OutgoingCall, call_next: ClientCallNext) -> Any:
        seen.append(call.data)
        return await call_next(call)

    await chain_client([rewrite, observe], send)(outgoing())
    assert seen == [{"id": 2}]


async def test_client_middleware_may_answer_without_sending() -> None:
    sent: list[bool] = []

    async def send(call: OutgoingCall) -> str:
        sent.append(True)
        return "network"

    async def cached(call: OutgoingCall, call_next: ClientCallNext) -> str:
        return "cache"

    assert await chain_client([cached], send)(outgoing()) == "cache"
    assert sent == []


async def test_log_calls_returns_the_answer() -> None:
    async def send(call: OutgoingCall) -> str:
        return "answer"

    assert await chain_client([log_calls], send)(outgoing()) == "answer"


async def test_log_calls_reraises_the_calls_exception() -> None:
    async def send(call: OutgoingCall) -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await chain_client([log_calls], send)(outgoing())


def test_outgoing_call_starts_without_headers_or_timeout() -> None:
    call = outgoing()
    assert (call.headers, call.timeout) == ({}, None)


def test_outgoing_calls_do_not_share_their_headers() -> None:
    first, second = outgoing(), outgoing()
    first.headers["a"] = "1"
    assert second.headers == {}
