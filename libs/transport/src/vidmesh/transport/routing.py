"""Router: the ``@message`` / ``@event`` decorators and the table a transport dispatches on."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from vidmesh.transport.context import MessageContext
from vidmesh.transport.handlers import Call, Handler, HandlerKind
from vidmesh.transport.middleware import CallNext, Middleware, chain_server
from vidmesh.transport.patterns import Pattern

F = TypeVar("F", bound=Callable[..., Any])

Invoke = Callable[[MessageContext], Any]
"""context -> value, awaitable or async iterable: what a transport calls per message."""


class Router:
    """Handlers by pattern, like a Nest controller's ``@MessagePattern``/``@EventPattern``.

    Each handler is served only over the transports it is declared for (``transports=``, by
    ``Transport.name``): the decorator's, else the router's; None means every transport of the
    service. An event meant for Kafka, say, is then not reachable over TCP.
    """

    def __init__(self, *, transports: Iterable[str] | None = None) -> None:
        self.messages: dict[str, Handler] = {}
        self.events: dict[str, list[Handler]] = {}
        self.transports = _transport_set(transports)

    def message(
        self, pattern: Pattern, *, transports: Iterable[str] | None = None
    ) -> Callable[[F], F]:
        """Register a request-response handler; its return value (or each yield) is the answer."""
        served = self._served(transports)

        def register(func: F) -> F:
            self._add(Handler.build(func, pattern, HandlerKind.MESSAGE, served))
            return func

        return register

    def event(
        self, pattern: Pattern, *, transports: Iterable[str] | None = None
    ) -> Callable[[F], F]:
        """Register an event handler; several may share a pattern and all of them run."""
        served = self._served(transports)

        def register(func: F) -> F:
            self._add(Handler.build(func, pattern, HandlerKind.EVENT, served))
            return func

        return register

    def _served(self, transports: Iterable[str] | None) -> frozenset[str] | None:
        return self.transports if transports is None else _transport_set(transports)

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
    """A router compiled with its middleware, once, for one transport to dispatch on: only the
    handlers declared for ``transport`` (None: every handler).

    ``direct`` holds the message handlers that need no :class:`MessageContext` (no middleware,
    nothing injected): a transport may call them with the payload alone and skip building one.
    """

    def __init__(
        self, router: Router, middleware: Sequence[Middleware] = (), transport: str | None = None
    ) -> None:
        messages = {
            route: handler
            for route, handler in router.messages.items()
            if handler.served_over(transport)
        }
        events = {
            route: served
            for route, handlers in router.events.items()
            if (served := [handler for handler in handlers if handler.served_over(transport)])
        }
        self.transport = transport
        self.direct: dict[str, Call] = {
            route: handler.call
            for route, handler in messages.items()
            if not middleware and not handler.uses_injection
        }
        self.messages: dict[str, Invoke] = {
            route: _invoker(handler, middleware) for route, handler in messages.items()
        }
        self.events: dict[str, tuple[Invoke, ...]] = {
            route: tuple(_invoker(handler, middleware) for handler in handlers)
            for route, handlers in events.items()
        }


def _transport_set(transports: Iterable[str] | None) -> frozenset[str] | None:
    if transports is None:
        return None
    if isinstance(transports, str):  # ("kafka") for ("kafka",): one name, not its letters
        return frozenset({transports})
    return frozenset(transports)


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
