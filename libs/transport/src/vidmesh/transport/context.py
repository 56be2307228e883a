"""The per-message context a handler or middleware can ask for."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any

from fast_depends import Depends

_current: ContextVar[MessageContext] = ContextVar("vidmesh_message_context")


@dataclass(slots=True)
class MessageContext:
    """One received message: what was asked, by whom, over which transport."""

    pattern: Any
    """The pattern as it arrived on the wire."""
    route: str
    """Its canonical routing key (Nest's transformPatternToRoute)."""
    data: Any
    """The payload as received, before validation."""
    id: str | None = None
    """The request id; None for an event."""
    headers: dict[str, str] = field(default_factory=dict)
    """Metadata sent beside the payload (e.g. W3C ``traceparent``)."""
    transport: str = "tcp"
    peer: str | None = None
    record: Any = None
    """The transport's own message (an aiokafka ConsumerRecord for Kafka), where there is one."""

    @property
    def is_event(self) -> bool:
        return self.id is None


def current_context() -> MessageContext:
    """The context of the message being handled; raises LookupError where there is none.

    It is set for handlers that take an injected parameter (such as ``Context``) and under
    middleware; a handler with neither runs on a fast path that builds no context.
    """
    return _current.get()


def set_current_context(context: MessageContext) -> Any:
    """Make ``context`` current; returns the token to pass to ``reset_current_context``."""
    return _current.set(context)


def reset_current_context(token: Any) -> None:
    _current.reset(token)


async def _context_dependency() -> MessageContext:
    # Async on purpose: fast-depends runs sync dependencies in a thread pool.
    return _current.get()


Context = Annotated[MessageContext, Depends(_context_dependency)]
"""Inject the current :class:`MessageContext` into a handler parameter."""
