"""Message patterns and their routing keys, computed the way Nest's transformPatternToRoute does.

Nest sorts object keys with JavaScript's ``localeCompare`` (ICU root collation), so mixed-case
keys order ``a < A < b < B``, not by code point. ``pyuca`` implements the Unicode Collation
Algorithm, which is what ICU's root collation is built on.
"""

from __future__ import annotations

import math
import unicodedata
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

import orjson
import pyuca

Pattern = str | int | float | dict[str, Any]

MAX_DEPTH = 5
MAX_KEYS = 20
MAX_KEY_LENGTH = 256
"""Longest key a handler's pattern may have; an incoming key past it can match no handler."""
_JSON_WHITESPACE = " \t\n\r"
_CACHED_LENGTH = 256  # characters; longer patterns and keys are not cached
_MAX_NON_STARTERS = 30  # combining marks looked at after a match (Unicode's stream-safe limit)


@cache
def _collator() -> pyuca.Collator:
    """The collation table, loaded on first use: it costs about 10 MiB and a quarter of a second,
    and only a pattern with two keys or more needs it (the services' own have one)."""
    return pyuca.Collator()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _sorted_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    if len(keys) < 2:
        return keys
    if any(len(key) > MAX_KEY_LENGTH for key in keys):
        # No handler has such a key, so any stable order routes it the same (nowhere), and
        # collating megabytes of a peer's text would block the event loop.
        return tuple(sorted(keys))
    if sum(map(len, keys)) > _CACHED_LENGTH:  # don't let peers fill the cache with big keys
        return _sort_keys(keys)
    return _cached_sorted_keys(keys)


def _sort_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    # Keys that collate equal (e.g. "a\x01" and "a\x02": control characters are ignorable)
    # keep JavaScript's Object.keys order, as Array.prototype.sort is stable: array-index keys
    # in numeric order first, then the others as inserted.
    index_keys = sorted((key for key in keys if _is_array_index(key)), key=int)
    js_order = index_keys + [key for key in keys if not _is_array_index(key)]
    return tuple(sorted(js_order, key=_sort_key))


_cached_sorted_keys = lru_cache(maxsize=4096)(_sort_keys)


def _is_array_index(key: str) -> bool:
    return (
        key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def _sort_key(text: str) -> tuple[int, ...]:
    """``pyuca.Collator.sort_key`` in linear time (pyuca copies the rest of the string per
    character, so a 100 KB key from a peer would block the event loop for seconds)."""
    if text.isascii():  # one collation element per character, and no contractions
        ascii_elements = _ascii_elements()
        return _key_of_elements([ascii_elements[byte] for byte in text.encode()])
    codepoints = [ord(char) for char in unicodedata.normalize("NFD", text)]
    root = _collator().table.root
    elements: list[Any] = []
    start = 0
    while start < len(codepoints):
        node, end, value = root, start, None  # longest match of codepoints[start:] in the table
        for index in range(start, len(codepoints)):
            if node.children is None or codepoints[index] not in node.children:
                break
            node = node.children[codepoints[index]]
            if node.value:
                end, value = index + 1, node.value
        # A non-starter not blocked from the match may extend it (a discontiguous contraction).
        last_class = None
        for index in range(end, min(len(codepoints), end + _MAX_NON_STARTERS)):
            combining_class = unicodedata.combining(chr(codepoints[index]))
            if combining_class == 0 or combining_class == last_class:
                break
            last_class = combining_class
            extended = _table_value([*codepoints[start:end], codepoints[index]])
            if extended is not None:
                # Drop the used mark: shift the marks before it right (cheaper than a del).
                codepoints[end + 1 : index + 1] = codepoints[end:index]
                end += 1
                value = extended
                break
        if not value:
            value = _collator().implicit_weight(codepoints[start])
            end = start + 1
        elements.extend(value)
        start = end
    return _key_of_elements(elements)


def _key_of_elements(elements: list[Any]) -> tuple[int, ...]:
    """pyuca's sort_key_from_collation_elements: the non-zero weights, level by level."""
    key: list[int] = []
    for level in range(4):
        if level:
            key.append(0)
        key += [element[level] for element in elements if len(element) > level and element[level]]
    return tuple(key)


def _table_value(codepoints: list[int]) -> Any:
    node = _collator().table.root
    for codepoint in codepoints:
        if node.children is None or codepoint not in node.children:
            return None
        node = node.children[codepoint]
    return node.value or None


def _ascii_element(byte: int) -> Any:
    [element] = _table_value([byte])
    return element


@cache
def _ascii_elements() -> list[Any]:
    return [_ascii_element(byte) for byte in range(128)]


def _number_text(value: float) -> str:
    """JavaScript's ``String(value)``: every JSON number is a double there."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) <= 2**53:
        return str(value)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if number == 0:
        return "0"
    # repr gives the shortest round-tripping digits, as JavaScript does; only the layout differs.
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    point = exponent + len(digit_tuple)  # the value is 0.<digits> * 10**point
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{'+' if point > 0 else '-'}{abs(point - 1)}"


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


def route_of_wire_string(pattern: str) -> str:
    """Route of a pattern that arrived as a string: Nest JSON-parses it first if it can."""
    if len(pattern) > _CACHED_LENGTH:  # don't let peers fill the cache with big strings
        return _route_of_wire_string(pattern)
    return _cached_route_of_wire_string(pattern)


def _route_of_wire_string(pattern: str) -> str:
    # JSON.parse skips leading whitespace; anything else that cannot start JSON is not parsed.
    start = pattern.lstrip(_JSON_WHITESPACE)[:1]
    if not start or start not in '{["-0123456789tfn':
        return pattern
    try:
        parsed = orjson.loads(pattern)
    except orjson.JSONDecodeError:
        return pattern
    return route_of(parsed)


_cached_route_of_wire_string = lru_cache(maxsize=4096)(_route_of_wire_string)


def route_of_incoming(pattern: Any) -> str:
    """Routing key of the ``pattern`` field of a received packet."""
    if isinstance(pattern, str):
        return route_of_wire_string(pattern)
    return route_of(pattern)


def check_handler_pattern(pattern: Any) -> None:
    """Raise ValueError for a pattern a handler may not use (a key over MAX_KEY_LENGTH)."""
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            if len(key) > MAX_KEY_LENGTH:
                raise ValueError(f"pattern key longer than {MAX_KEY_LENGTH} characters")
            check_handler_pattern(value)
