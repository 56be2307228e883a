"""Database errors logged without the values of the statement that failed.

A failed statement's text is safe, its parameters are not (emails, password hashes, titles): they
reach a log through SQLAlchemy's ``[parameters: ...]`` (stopped by ``hide_parameters`` on the
engine, see ``db.py``) and through PostgreSQL's and asyncpg's own messages
(``DETAIL: Key (email)=(...)``, ``invalid input for query argument $1: '...'``). This processor
renders any traceback that passes through a database error with the frames, the types, the
SQLSTATE, the constraint and the statement, and no message of any exception in it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from structlog.types import EventDict, WrappedLogger

_DATABASE_ERRORS = (sa_exc.DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError)


def redact_database_errors(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor, before ``format_exc_info``: ``exc_info`` of a database error
    becomes a redacted ``exception`` text."""
    error = _exception_of(event_dict.get("exc_info"))
    if error is None or not any(isinstance(e, _DATABASE_ERRORS) for e in _chain(error)):
        return event_dict
    del event_dict["exc_info"]
    event_dict["exception"] = "".join(_redacted(e) for e in reversed(list(_chain(error))))
    return event_dict


def _exception_of(exc_info: Any) -> BaseException | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        value = exc_info[1]
        return value if isinstance(value, BaseException) else None
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then its cause or context, and so on (as Python prints them, reversed)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def _redacted(error: BaseException) -> str:
    frames = "".join(traceback.format_tb(error.__traceback__))
    head = "Traceback (most recent call last):\n" if frames else ""
    return f"{head}{frames}{type(error).__module__}.{type(error).__qualname__}: {_summary(error)}\n"


def _summary(error: BaseException) -> str:
    """What is safe to say about an error of a chain that went through the database: no message
    (the driver's own errors, such as a codec's ValueError, quote the values too)."""
    facts: list[str] = []
    source: Any = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    driver_error = getattr(source, "__cause__", None)  # asyncpg's, under SQLAlchemy's adapter
    for name in ("sqlstate", "constraint_name", "table_name", "column_name"):
        value = getattr(source, name, None) or getattr(driver_error, name, None)
        if value:
            facts.append(f"{name}={value}")
    if isinstance(error, sa_exc.StatementError) and error.statement:
        facts.append(f"statement={' '.join(error.statement.split())!r}")
    return "(values redacted) " + " ".join(facts)
