"""Router registration and the RouteTable transports dispatch on."""

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from vidmesh.transport.context import MessageContext
from vidmesh.transport.errors import NO_MESSAGE_HANDLER, RemoteError
from vidmesh.transport.handlers import HandlerKind
from vidmesh.transport.middleware import CallNext
from vidmesh.transport.patterns import route_of
from vidmesh.transport.routing import Router, RouteTable
from vidmesh.transport.testing import serve_tcp, wait_until


def message_context(data: Any = None, route: str = "r") -> MessageContext:
    return MessageContext(pattern=route, route=route, data=data, id="1")


async def settle(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


# -- Router ---------------------------------------------------------------------------------


def test_message_decorator_returns_the_function_unchanged() -> None:
    router = Router()

    def handler() -> None: ...

    assert router.message("a")(handler) is handler


def test_message_is_registered_under_its_route() -> None:
    router = Router()

    @router.message({"role": "video", "cmd": "get"})
    def handler() -> None: ...

    assert router.messages[route_of({"cmd": "get", "role": "video"})].func is handler


def test_message_handler_has_message_kind() -> None:
    router = Router()

    @router.message("a")
    def handler() -> None: ...

    assert router.messages["a"].kind is HandlerKind.MESSAGE


def test_event_handler_has_event_kind() -> None:
    router = Router()

    @router.event("a")
    def handler() -> None: ...

    assert [h.kind for h in router.events["a"]] == [HandlerKind.EVENT]


def test_duplicate_message_pattern_is_rejected() -> None:
    router = Router()

    @router.message("video.get")
    def first() -> None: ...

    with pytest.raises(ValueError, match="already has a message handler"):

        @router.message("video.get")
        def second() -> None: ...


def test_duplicate_object_pattern_in_another_key_order_is_rejected() -> None:
    router = Router()
    router.message({"cmd": "get", "role": "video"})(lambda: None)
    with pytest.raises(ValueError, match="already has a message handler"):
        router.message({"role": "video", "cmd": "get"})(lambda: None)


def test_rejected_duplicate_keeps_the_first_handler() -> None:
    router = Router()

    def first() -> None: ...

    router.message("a")(first)
    with pytest.raises(ValueError, match="already has"):
        router.message("a")(lambda: None)
    assert router.messages["a"].func is first


def test_several_event_handlers_may_share_a_pattern_in_registration_order() -> None:
    router = Router()

    def first() -> None: ...

    def second() -> None: ...

    router.event("video.created")(first)
    router.event("video.created")(second)
    assert [h.func for h in router.events["video.created"]] == [first, second]


def test_message_and_event_may_share_a_pattern() -> None:
    router = Router()
    router.message("a")(lambda: 1)
    router.event("a")(lambda: None)
    assert "a" in router.messages
    assert len(router.events["a"]) == 1


def test_include_router_adds_the_other_routers_messages() -> None:
    parent, child = Router(), Router()

    def handler() -> None: ...

    child.message("video.get")(handler)
    parent.include_router(child)
    assert parent.messages["video.get"].func is handler


def test_include_router_appends_the_other_routers_event_handlers() -> None:
    parent, child = Router(), Router()

    def mine() -> None: ...

    def theirs() -> None: ...

    parent.event("e")(mine)
    child.event("e")(theirs)
    parent.include_router(child)
    assert [h.func for h in parent.events["e"]] == [mine, theirs]


def test_include_router_rejects_a_message_pattern_already_handled() -> None:
    parent, child = Router(), Router()
    parent.message("a")(lambda: 1)
    child.message("a")(lambda: 2)
    with pytest.raises(ValueError, match="already has a message handler"):
        parent.include_router(child)


def test_include_router_leaves_the_other_router_unchanged() -> None:
    parent, child = Router(), Router()
    parent.message("mine")(lambda: 1)
    child.message("theirs")(lambda: 2)
    parent.include_router(child)
    assert list(child.messages) == ["theirs"]


# -- RouteTable -----------------------------------------------------------------------------


def test_route_table_invokes_the_handler_with_the_context_data() -> None:
    router = Router()

    @router.message("double")
    def double(value: int) -> int:
        return value * 2

    assert RouteTable(router).messages["double"](message_context(data="21")) == 42


def test_route_table_keeps_every_event_handler_of_a_pattern() -> None:
    router = Router()
    seen: list[str] = []
    router.event("e")(lambda data: seen.append(f"first:{data}"))
    router.event("e")(lambda data: seen.append(f"second:{data}"))
    for invoke in RouteTable(router).events["e"]:
        invoke(message_context(data="x"))
    assert seen == ["first:x", "second:x"]


def test_route_table_is_a_snapshot_of_the_router() -> None:
    router = Router()
    table = RouteTable(router)
    router.message("late")(lambda: 1)
    assert "late" not in table.messages


async def test_route_table_runs_middleware_in_order_around_the_handler() -> None:
    router = Router()
    trace: list[str] = []

    @router.message("m")
    async def handler() -> str:
        trace.append("handler")
        return "result"

    def recording(name: str) -> Any:
        async def middleware(context: MessageContext, call_next: CallNext) -> Any:
            trace.append(f"{name} before")
            result = await call_next(context)
            trace.append(f"{name} after")
            return result

        return middleware

    table = RouteTable(router, [recording("outer"), recording("inner")])
    assert await table.messages["m"](message_context()) == "result"
    assert trace == ["outer before", "inner before", "handler", "inner after", "outer after"]


async def test_route_table_middleware_wraps_event_handlers_too() -> None:
    router = Router()
    seen: list[str] = []
    router.event("e")(lambda: seen.append("handler"))

    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        seen.append("middleware")
        return await call_next(context)

    [invoke] = RouteTable(router, [middleware]).events["e"]
    await settle(invoke(message_context()))
    assert seen == ["middleware", "handler"]


async def test_route_table_middleware_receives_the_sync_handlers_value() -> None:
    router = Router()
    router.message("m")(lambda value: value + 1)
    seen: list[Any] = []

    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        result = await call_next(context)
        seen.append(result)
        return result

    await RouteTable(router, [middleware]).messages["m"](message_context(data=1))
    assert seen == [2]


async def test_route_table_middleware_may_replace_the_result() -> None:
    router = Router()
    router.message("m")(lambda: "original")

    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        await call_next(context)
        return "replaced"

    assert await RouteTable(router, [middleware]).messages["m"](message_context()) == "replaced"


async def test_route_table_middleware_may_change_the_payload() -> None:
    router = Router()

    @router.message("m")
    def handler(value: int) -> int:
        return value

    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        context.data = 99
        return await call_next(context)

    assert await RouteTable(router, [middleware]).messages["m"](message_context(data=1)) == 99


async def test_route_table_middleware_gets_a_stream_as_an_async_iterator() -> None:
    router = Router()

    @router.message("s")
    async def stream(count: int) -> AsyncIterator[int]:
        for index in range(count):
            yield index

    async def middleware(context: MessageContext, call_next: CallNext) -> Any:
        result = await call_next(context)
        assert hasattr(result, "__aiter__")
        return result

    result = await RouteTable(router, [middleware]).messages["s"](message_context(data=3))
    assert [item async for item in result] == [0, 1, 2]


# -- one route table per transport ----------------------------------------------------------


def per_transport_router() -> Router:
    router = Router()

    @router.message("everywhere")
    def everywhere() -> str:
        return "anywhere"

    @router.message("over_tcp", transports=["tcp"])
    def over_tcp() -> str:
        return "tcp"

    @router.event("happened", transports="kafka")
    def happened(data: Any) -> None: ...

    return router


def test_a_table_holds_only_the_handlers_declared_for_its_transport() -> None:
    router = per_transport_router()
    tcp, kafka = RouteTable(router, transport="tcp"), RouteTable(router, transport="kafka")
    assert set(tcp.messages) == {route_of("everywhere"), route_of("over_tcp")}
    assert set(tcp.direct) == set(tcp.messages)
    assert tcp.events == {}
    assert set(kafka.messages) == {route_of("everywhere")}
    assert set(kafka.events) == {route_of("happened")}


def test_a_table_for_no_transport_in_particular_holds_every_handler() -> None:
    table = RouteTable(per_transport_router())
    assert set(table.messages) == {route_of("everywhere"), route_of("over_tcp")}
    assert set(table.events) == {route_of("happened")}


def test_a_routers_transports_are_the_default_of_its_handlers_and_survive_inclusion() -> None:
    kafka_only = Router(transports=["kafka"])

    @kafka_only.event("e")
    def on_kafka(data: Any) -> None: ...

    @kafka_only.event("e", transports=["tcp"])
    def on_tcp(data: Any) -> None: ...

    service = Router()
    service.include_router(kafka_only)
    assert [h.func for h in service.events["e"]] == [on_kafka, on_tcp]
    assert len(RouteTable(service, transport="kafka").events["e"]) == 1
    assert len(RouteTable(service, transport="tcp").events["e"]) == 1
    assert "e" not in RouteTable(service, transport="asgi").events


async def test_over_tcp_an_event_declared_for_kafka_runs_no_handler() -> None:
    seen: list[Any] = []
    router = Router()
    router.event("counted", transports=["kafka"])(seen.append)
    router.event("pinged", transports=["tcp"])(seen.append)
    router.message("asked", transports=["kafka"])(lambda data: data)
    async with serve_tcp(router) as served:
        await served.client.emit("counted", "forged")
        await served.client.emit("pinged", "real")
        await wait_until(lambda: seen == ["real"])
        with pytest.raises(RemoteError) as refused:
            await served.client.send("asked", 1)
        assert refused.value.error == NO_MESSAGE_HANDLER
    assert seen == ["real"]
