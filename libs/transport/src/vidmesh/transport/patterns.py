"""Message patterns and their routing keys, computed the way Nest's transformPatternToRoute does.

Nest sorts object keys with JavaScript's ``localeCompare`` (ICU root collation), so mixed-case
keys order ``a < A < b < B``, not by code point. ``pyuca`` implements the Unicode Collation
Algorithm, which is what ICU's root collation is built on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import pyuca

Pattern = str | int | float | dict[str, Any]

MAX_DEPTH = 5
MAX_KEYS = 20

_collator = pyuca.Collator()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@lru_cache(maxsize=4096)
def _sorted_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    # ICU breaks ties between strings that collate equal (e.g. identical keys never occur,
    # but "a" vs "a\0") by code point; the tuple sort below does the same.
    return tuple(sorted(keys, key=lambda key: (_collator.sort_key(key), key)))


def _number_text(value: float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def route_of(pattern: Any, depth: int = 0) -> str:
    """The routing key of a pattern: the string itself, or Nest's canonical object form."""
    if isinstance(pattern, str):
        return pattern
    if isinstance(pattern, int | float):
        return _number_text(pattern)
    if isinstance(pattern, list):
        # JavaScript treats an array as an object keyed by index.
        pattern = {str(index): item for index, item in enumerate(pattern)}
    if not isinstance(pattern, dict):
        return "null" if pattern is None else str(pattern)
    if depth > MAX_DEPTH:
        return "[MAX_DEPTH_REACHED]"
    if len(pattern) > MAX_KEYS:
        return "[TOO_MANY_KEYS]"
    keys = tuple(pattern)
    if len(keys) > 1:
        keys = _sorted_keys(keys)
    parts = []
    for key in keys:
        value = pattern[key]
        if isinstance(value, str):
            parts.append(f'"{_escape(key)}":"{_escape(value)}"')
        else:
            parts.append(f'"{_escape(key)}":{route_of(value, depth + 1)}')
    return "{" + ",".join(parts) + "}"


@lru_cache(maxsize=4096)
def route_of_wire_string(pattern: str) -> str:
    """Route of a pattern that arrived as a string: Nest JSON-parses it first if it can."""
    if not pattern or pattern[0] not in '{["-0123456789tfn':
        return pattern
    try:
        parsed = orjson.loads(pattern)
    except orjson.JSONDecodeError:
        return pattern
    return route_of(parsed)


def route_of_incoming(pattern: Any) -> str:
    """Routing key of the ``pattern`` field of a received packet."""
    if isinstance(pattern, str):
        return route_of_wire_string(pattern)
    return route_of(pattern)
