"""Hooks around handlers (server side) and around calls (client side).

A server middleware is ``async def mw(context, call_next) -> result``; a client middleware is
``async def mw(call, call_next) -> result``. Each may look at or change what passes through and
must return what ``call_next`` returned. For a streamed answer that is the async iterator itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from vidmesh.transport.context import MessageContext

logger = structlog.get_logger("vidmesh.transport")

CallNext = Callable[[MessageContext], Awaitable[Any]]
Middleware = Callable[[MessageContext, CallNext], Awaitable[Any]]


class CallKind(StrEnum):
    REQUEST = "request"
    STREAM = "stream"
    EVENT = "event"


@dataclass(slots=True)
class OutgoingCall:
    """A call a client is about to make; ``headers`` travel beside the payload."""

    kind: CallKind
    pattern: Any
    data: Any
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None


ClientCallNext = Callable[[OutgoingCall], Awaitable[Any]]
ClientMiddleware = Callable[[OutgoingCall, ClientCallNext], Awaitable[Any]]


def chain_server(middleware: Sequence[Middleware], innermost: CallNext) -> CallNext:
    """``middleware[0]`` runs first and sees the result last."""
    call = innermost
    for outer in reversed(middleware):
        call = _link(outer, call)
    return call


def _link(outer: Middleware, inner: CallNext) -> CallNext:
    return lambda context: outer(context, inner)


def chain_client(
    middleware: Sequence[ClientMiddleware], innermost: ClientCallNext
) -> ClientCallNext:
    call = innermost
    for outer in reversed(middleware):
        call = _link_client(outer, call)
    return call


def _link_client(outer: ClientMiddleware, inner: ClientCallNext) -> ClientCallNext:
    return lambda outgoing: outer(outgoing, inner)


async def log_messages(context: MessageContext, call_next: CallNext) -> Any:
    """Server middleware: one structured log line per handled message, with its duration."""
    started = time.perf_counter()
    try:
        result = await call_next(context)
    except Exception as error:
        logger.info(
            "message_failed",
            route=context.route,
            transport=context.transport,
            error=type(error).__name__,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        raise
    logger.info(
        "message_handled",
        route=context.route,
        transport=context.transport,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return result


async def log_calls(call: OutgoingCall, call_next: ClientCallNext) -> Any:
    """Client middleware: one structured log line per call, with its duration."""
    started = time.perf_counter()
    try:
        result = await call_next(call)
    except Exception as error:
        logger.info("call_failed", pattern=call.pattern, error=type(error).__name__)
        raise
    logger.info(
        "call_done",
        pattern=call.pattern,
        kind=call.kind.value,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return result
