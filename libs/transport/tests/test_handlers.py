"""Handler.build: payload validation from type hints, dependency injection, streams."""

import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pydantic
import pytest
from fast_depends import Depends
from vidmesh.transport.context import (
    Context,
    MessageContext,
    current_context,
    reset_current_context,
    set_current_context,
)
from vidmesh.transport.errors import PayloadValidationError, RpcError
from vidmesh.transport.handlers import Handler, HandlerKind


class VideoIn(pydantic.BaseModel):
    title: str
    duration: int


class Upload(pydantic.BaseModel):
    video: VideoIn
    tags: list[str] = []


@contextmanager
def handling(data: Any = None, route: str = "video.get") -> Iterator[MessageContext]:
    """Make a MessageContext current, as a transport does around a handler call."""
    context = MessageContext(pattern=route, route=route, data=data, id="1")
    token = set_current_context(context)
    try:
        yield context
    finally:
        reset_current_context(token)


def build(func: Any, pattern: Any = "video.get", kind: HandlerKind = HandlerKind.MESSAGE) -> Any:
    return Handler.build(func, pattern, kind).call


def invalid(call: Any, payload: Any) -> PayloadValidationError:
    with pytest.raises(PayloadValidationError) as caught:
        call(payload)
    return caught.value


async def invalid_async(call: Any, payload: Any) -> PayloadValidationError:
    with pytest.raises(PayloadValidationError) as caught:
        await call(payload)
    return caught.value


async def one_dependency() -> int:
    return 1


def sync_dependency() -> str:
    return "sync"


async def route_dependency(context: Context) -> str:
    return context.route


# -- Handler.build --------------------------------------------------------------------------


def test_build_computes_the_route_of_an_object_pattern() -> None:
    def handler() -> None: ...

    built = Handler.build(handler, {"role": "video", "cmd": "get"}, HandlerKind.MESSAGE)
    assert built.route == '{"cmd":"get","role":"video"}'


def test_build_keeps_pattern_kind_and_function() -> None:
    def handler() -> None: ...

    built = Handler.build(handler, "video.created", HandlerKind.EVENT)
    assert (built.pattern, built.kind, built.func) == ("video.created", HandlerKind.EVENT, handler)


def test_build_marks_an_async_generator_as_a_stream() -> None:
    async def handler() -> AsyncIterator[int]:
        yield 1

    assert Handler.build(handler, "s", HandlerKind.MESSAGE).is_stream


def test_build_marks_a_sync_generator_as_a_stream() -> None:
    def handler() -> Iterator[int]:
        yield 1

    assert Handler.build(handler, "s", HandlerKind.MESSAGE).is_stream


def test_build_does_not_mark_a_coroutine_as_a_stream() -> None:
    async def handler() -> int:
        return 1

    assert not Handler.build(handler, "s", HandlerKind.MESSAGE).is_stream


# -- payload parameters ---------------------------------------------------------------------


def test_handler_without_parameters_ignores_the_payload() -> None:
    def handler() -> str:
        return "pong"

    assert build(handler)({"anything": 1}) == "pong"


def test_unannotated_parameter_receives_the_payload_unchanged() -> None:
    def handler(data) -> Any:  # type: ignore[no-untyped-def]
        return data

    payload = {"a": [1, "2"]}
    assert build(handler)(payload) is payload


def test_any_parameter_receives_the_payload_unchanged() -> None:
    def handler(data: Any) -> Any:
        return data

    assert build(handler)("5") == "5"


def test_one_payload_parameter_receives_the_whole_payload() -> None:
    def handler(video: VideoIn) -> VideoIn:
        return video

    assert build(handler)({"title": "t", "duration": 3}) == VideoIn(title="t", duration=3)


def test_one_payload_parameter_is_converted_to_its_type() -> None:
    def handler(video_id: int) -> int:
        return video_id

    assert build(handler)("42") == 42


def test_several_payload_parameters_receive_fields_by_name() -> None:
    def handler(video_id: int, title: str) -> tuple[int, str]:
        return video_id, title

    assert build(handler)({"title": "t", "video_id": "7", "extra": 0}) == (7, "t")


def test_several_payload_parameters_use_defaults_for_missing_fields() -> None:
    def handler(video_id: int, limit: int = 10) -> tuple[int, int]:
        return video_id, limit

    assert build(handler)({"video_id": 1}) == (1, 10)


def test_payload_parameters_may_be_named_like_basemodel_attributes() -> None:
    def handler(json: str, schema: int, copy: bool) -> tuple[str, int, bool]:
        return json, schema, copy

    assert build(handler)({"json": "j", "schema": "2", "copy": True}) == ("j", 2, True)


def test_payload_parameters_may_start_with_an_underscore() -> None:
    def handler(video_id: int, _trace: str = "") -> tuple[int, str]:
        return video_id, _trace

    assert build(handler)({"video_id": 1, "_trace": "t"}) == (1, "t")


def test_a_payload_parameters_own_alias_is_honoured() -> None:
    def handler(
        video_id: Annotated[int, pydantic.Field(alias="videoId")], limit: int = 10
    ) -> tuple[int, int]:
        return video_id, limit

    assert build(handler)({"videoId": 3, "limit": 5}) == (3, 5)


def test_a_payload_parameters_field_constraints_apply() -> None:
    def handler(video_id: int, limit: Annotated[int, pydantic.Field(le=100)] = 10) -> None: ...

    error = invalid(build(handler), {"video_id": 1, "limit": 1000})
    assert [problem["field"] for problem in error.error["errors"]] == ["limit"]


# -- validation errors ----------------------------------------------------------------------


def test_invalid_single_payload_raises_payload_validation_error() -> None:
    def handler(video_id: int) -> int:
        return video_id

    assert isinstance(invalid(build(handler), "abc"), RpcError)


def test_invalid_payload_error_has_nests_bad_request_shape() -> None:
    def handler(video_id: int, title: str) -> None: ...

    error = invalid(build(handler), {"video_id": "x", "title": "t"}).error
    assert error["statusCode"] == 400
    assert error["error"] == "Bad Request"
    assert isinstance(error["message"], str)
    [problem] = error["errors"]
    assert problem["field"] == "video_id"
    assert "integer" in problem["message"]


def test_invalid_payload_error_names_the_bad_field_in_its_message() -> None:
    def handler(video_id: int, title: str) -> None: ...

    error = invalid(build(handler), {"video_id": 1})
    assert "title" in error.error["message"]


def test_invalid_payload_error_lists_every_bad_field() -> None:
    def handler(video_id: int, title: str) -> None: ...

    error = invalid(build(handler), {"video_id": "x"})
    assert [problem["field"] for problem in error.error["errors"]] == ["video_id", "title"]


def test_invalid_model_payload_names_the_field_inside_the_model() -> None:
    def handler(video: VideoIn) -> None: ...

    error = invalid(build(handler), {"title": "t", "duration": "long"})
    assert [problem["field"] for problem in error.error["errors"]] == ["duration"]


def test_invalid_nested_payload_names_the_dotted_path() -> None:
    def handler(upload: Upload) -> None: ...

    error = invalid(build(handler), {"video": {"title": "t"}})
    assert [problem["field"] for problem in error.error["errors"]] == ["video.duration"]


def test_non_object_payload_for_several_parameters_is_invalid() -> None:
    def handler(video_id: int, title: str) -> None: ...

    assert invalid(build(handler), [1, "t"]).error["statusCode"] == 400


def test_handler_is_not_called_when_the_payload_is_invalid() -> None:
    calls: list[int] = []

    def handler(video_id: int) -> None:
        calls.append(video_id)

    invalid(build(handler), "abc")
    assert calls == []


def test_handler_with_several_parameters_is_not_called_when_a_field_is_invalid() -> None:
    calls: list[Any] = []

    def handler(video_id: int, title: str) -> None:
        calls.append((video_id, title))

    invalid(build(handler), {"video_id": 1, "title": ["not", "a", "string"]})
    assert calls == []


async def test_async_handler_validates_before_it_is_called() -> None:
    calls: list[int] = []

    async def handler(video_id: int) -> None:
        calls.append(video_id)

    invalid(build(handler), "abc")
    assert calls == []


# -- sync and async handlers ----------------------------------------------------------------


def test_sync_handler_returns_its_value_directly() -> None:
    def handler(video_id: int) -> int:
        return video_id * 2

    assert build(handler)(21) == 42


async def test_async_handler_returns_an_awaitable_of_its_value() -> None:
    async def handler(video_id: int) -> int:
        return video_id * 2

    result = build(handler)(21)
    assert inspect.isawaitable(result)
    assert await result == 42


def test_error_raised_by_a_handler_propagates_unchanged() -> None:
    not_found = RpcError.status(404, "Video not found")

    def handler(video_id: int) -> None:
        raise not_found

    with pytest.raises(RpcError) as caught:
        build(handler)(1)
    assert caught.value is not_found


def test_sync_generator_handler_yields_its_items() -> None:
    def handler(count: int) -> Iterator[int]:
        yield from range(count)

    assert list(build(handler)(3)) == [0, 1, 2]


async def test_async_generator_handler_yields_its_items() -> None:
    async def handler(count: int) -> AsyncIterator[int]:
        for index in range(count):
            yield index

    assert [item async for item in build(handler)("3")] == [0, 1, 2]


def test_async_generator_handler_validates_before_it_starts() -> None:
    started: list[bool] = []

    async def handler(count: int) -> AsyncIterator[int]:
        started.append(True)
        yield count

    invalid(build(handler), "many")
    assert started == []


# -- dependency injection -------------------------------------------------------------------


async def test_depends_injects_the_dependency_value() -> None:
    async def handler(video_id: int, offset: Annotated[int, Depends(one_dependency)]) -> int:
        return video_id + offset

    assert await build(handler)(41) == 42


async def test_depends_as_default_injects_the_dependency_value() -> None:
    async def handler(video_id: int, offset: int = Depends(one_dependency)) -> int:
        return video_id + offset

    assert await build(handler)(41) == 42


async def test_payload_is_validated_when_the_handler_has_dependencies() -> None:
    async def handler(video_id: int, offset: Annotated[int, Depends(one_dependency)]) -> int:
        return video_id + offset

    assert await build(handler)("41") == 42


async def test_invalid_payload_with_dependencies_names_no_parameter_for_a_whole_payload() -> None:
    async def handler(video: VideoIn, offset: Annotated[int, Depends(one_dependency)]) -> None: ...

    error = await invalid_async(build(handler), {"title": "t", "duration": "long"})
    assert [problem["field"] for problem in error.error["errors"]] == ["duration"]


async def test_invalid_field_with_dependencies_names_the_field() -> None:
    async def handler(
        video_id: int, title: str, offset: Annotated[int, Depends(one_dependency)]
    ) -> None: ...

    error = await invalid_async(build(handler), {"video_id": "x", "title": "t"})
    assert error.error["statusCode"] == 400
    assert [problem["field"] for problem in error.error["errors"]] == ["video_id"]


async def test_missing_field_with_dependencies_names_the_field() -> None:
    async def handler(
        video_id: int, title: str, offset: Annotated[int, Depends(one_dependency)]
    ) -> None: ...

    error = await invalid_async(build(handler), {"video_id": 1})
    assert [problem["field"] for problem in error.error["errors"]] == ["title"]


async def test_handler_with_dependencies_is_not_called_when_the_payload_is_invalid() -> None:
    calls: list[int] = []

    async def handler(video_id: int, offset: Annotated[int, Depends(one_dependency)]) -> None:
        calls.append(video_id)

    await invalid_async(build(handler), "abc")
    assert calls == []


def test_non_object_payload_for_several_parameters_with_dependencies_is_invalid() -> None:
    async def handler(
        video_id: int, title: str, offset: Annotated[int, Depends(one_dependency)]
    ) -> None: ...

    assert invalid(build(handler), "abc").error["statusCode"] == 400


def test_sync_handler_with_a_sync_dependency_returns_its_value_directly() -> None:
    def handler(video_id: int, suffix: Annotated[str, Depends(sync_dependency)]) -> str:
        return f"{video_id}-{suffix}"

    assert build(handler)("1") == "1-sync"


def test_sync_handler_with_a_dependency_is_not_called_when_the_payload_is_invalid() -> None:
    calls: list[int] = []

    def handler(video_id: int, suffix: Annotated[str, Depends(sync_dependency)]) -> None:
        calls.append(video_id)

    assert invalid(build(handler), "abc").error["statusCode"] == 400
    assert calls == []


# -- Context --------------------------------------------------------------------------------


async def test_context_injects_the_current_message_context() -> None:
    async def handler(context: Context) -> MessageContext:
        return context

    with handling() as context:
        assert await build(handler)(None) is context


async def test_context_and_a_payload_parameter_work_together() -> None:
    async def handler(video_id: int, context: Context) -> tuple[int, str]:
        return video_id, context.route

    with handling(route="video.get"):
        assert await build(handler)("3") == (3, "video.get")


async def test_a_dependency_may_itself_ask_for_the_context() -> None:
    async def handler(route: Annotated[str, Depends(route_dependency)]) -> str:
        return route

    with handling(route="video.list"):
        assert await build(handler)(None) == "video.list"


async def test_sync_handler_may_ask_for_the_context() -> None:
    def handler(video_id: int, context: Context) -> tuple[int, str]:
        return video_id, context.route

    call = build(handler)
    with handling(route="video.get"):
        result = call(5)
        value = await result if inspect.isawaitable(result) else result
    assert value == (5, "video.get")


async def test_sync_generator_handler_may_ask_for_the_context() -> None:
    def handler(count: int, context: Context) -> Iterator[str]:
        for index in range(count):
            yield f"{context.route}:{index}"

    call = build(handler)
    with handling(route="s"):
        result = call(2)
        items = [item async for item in result] if hasattr(result, "__aiter__") else list(result)
    assert items == ["s:0", "s:1"]


async def test_async_generator_handler_may_ask_for_the_context() -> None:
    async def handler(count: int, context: Context) -> AsyncIterator[str]:
        for index in range(count):
            yield f"{context.route}:{index}"

    with handling(route="s"):
        assert [item async for item in build(handler)(2)] == ["s:0", "s:1"]


async def test_async_generator_with_dependencies_validates_when_iterated() -> None:
    started: list[bool] = []

    async def handler(count: int, context: Context) -> AsyncIterator[int]:
        started.append(True)
        yield count

    with handling(), pytest.raises(PayloadValidationError) as caught:
        _ = [item async for item in build(handler)("many")]
    assert caught.value.error["statusCode"] == 400
    assert started == []


def test_current_context_outside_a_handler_raises_lookup_error() -> None:
    with pytest.raises(LookupError):
        current_context()


def test_current_context_is_the_one_made_current() -> None:
    with handling() as context:
        assert current_context() is context


def test_message_context_without_id_is_an_event() -> None:
    assert MessageContext(pattern="e", route="e", data=None).is_event


def test_message_context_with_id_is_not_an_event() -> None:
    assert not MessageContext(pattern="m", route="m", data=None, id="1").is_event
