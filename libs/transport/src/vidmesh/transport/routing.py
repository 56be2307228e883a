"""Router: the ``@message`` / ``@event`` decorators and the table a transport dispatches on."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from vidmesh.transport.context import MessageContext
from vidmesh.transport.handlers import Call, Handler, HandlerKind
from vidmesh.transport.middleware import CallNext, Middleware, chain_server
from vidmesh.transport.patterns import Pattern

F = TypeVar("F", bound=Callable[..., Any])

Invoke = Callable[[MessageContext], Any]
"""context -> value, awaitable or async iterable: what a transport calls per message."""


class Router:
    """Handlers by pattern, like a Nest controller's ``@MessagePattern``/``@EventPattern``."""

    def __init__(self) -> None:
        self.messages: dict[str, Handler] = {}
        self.events: dict[str, list[Handler]] = {}

    def message(self, pattern: Pattern) -> Callable[[F], F]:
        """Register a request-response handler; its return value (or each yield) is the answer."""

        def register(func: F) -> F:
            self._add(Handler.build(func, pattern, HandlerKind.MESSAGE))
            return func

        return register

    def event(self, pattern: Pattern) -> Callable[[F], F]:
        """Register an event handler; several may share a pattern and all of them run."""

        def register(func: F) -> F:
            self._add(Handler.build(func, pattern, HandlerKind.EVENT))
            return func

        return register

    def include_router(self, other: Router) -> None:
        for handler in other.messages.values():
            self._add(handler)
        for handlers in other.events.values():
            for handler in handlers:
                self._add(handler)

    def _add(self, handler: Handler) -> None:
        if handler.kind is HandlerKind.EVENT:
            self.events.setdefault(handler.route, []).append(handler)
            return
        if handler.route in self.messages:
            raise ValueError(f"pattern {handler.route} already has a message handler")
        self.messages[handler.route] = handler


class RouteTable:
    """A router compiled with its middleware, once, for the transports to dispatch on.

    ``direct`` holds the message handlers that need no :class:`MessageContext` (no middleware,
    nothing injected): a transport may call them with the payload alone and skip building one.
    """

    def __init__(self, router: Router, middleware: Sequence[Middleware] = ()) -> None:
        self.direct: dict[str, Call] = {
            route: handler.call
            for route, handler in router.messages.items()
            if not middleware and not handler.uses_injection
        }
        self.messages: dict[str, Invoke] = {
            route: _invoker(handler, middleware) for route, handler in router.messages.items()
        }
        self.events: dict[str, tuple[Invoke, ...]] = {
            route: tuple(_invoker(handler, middleware) for handler in handlers)
            for route, handlers in router.events.items()
        }


def _invoker(handler: Handler, middleware: Sequence[Middleware]) -> Invoke:
    call = handler.call
    if not middleware:
        return lambda context: call(context.data)

    async def innermost(context: MessageContext) -> Any:
        result = call(context.data)
        if inspect.isawaitable(result):
            return await result
        return result

    chained: CallNext = chain_server(middleware, innermost)
    return chained
