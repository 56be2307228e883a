"""Routing keys computed the way Nest's transformPatternToRoute does.

Expected strings were produced by Nest's function under Node 20 (ICU localeCompare).
"""

import json
import tracemalloc
from typing import Any

import pytest
import pyuca
from hypothesis import given, settings
from hypothesis import strategies as st
from vidmesh.transport import Router
from vidmesh.transport.patterns import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_KEYS,
    route_of,
    route_of_incoming,
    route_of_wire_string,
)


def nested(levels: int) -> dict[str, Any]:
    """``{"l": {"l": ... {"x": 1}}}`` with ``{"x": 1}`` at depth ``levels``."""
    pattern: dict[str, Any] = {"x": 1}
    for _ in range(levels):
        pattern = {"l": pattern}
    return pattern


# -- strings and numbers --------------------------------------------------------------------


def test_string_pattern_is_its_own_route() -> None:
    assert route_of("video.create") == "video.create"


def test_string_pattern_is_not_escaped() -> None:
    assert route_of('say "hi" \\ bye') == 'say "hi" \\ bye'


@pytest.mark.parametrize(
    ("number", "route"),
    [
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (2.0, "2"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.23e22, "1.23e+22"),
        (123456789012345678901.0, "123456789012345680000"),
        (0.000001, "0.000001"),
        (0.00001, "0.00001"),
        (1e-7, "1e-7"),
        (-1.5e-10, "-1.5e-10"),
        (5e-324, "5e-324"),
        (2**53, "9007199254740992"),
        (2**63 - 1, "9223372036854776000"),
        (10**21, "1e+21"),
    ],
)
def test_number_route_is_javascripts_string_of_the_number(number: float, route: str) -> None:
    assert route_of(number) == route


def test_number_inside_an_object_is_written_as_javascript_does() -> None:
    assert route_of({"v": 0.00001, "w": 1e-7}) == '{"v":0.00001,"w":1e-7}'


# -- objects --------------------------------------------------------------------------------


def test_object_pattern_route_is_canonical_json_like_text() -> None:
    assert route_of({"cmd": "create"}) == '{"cmd":"create"}'


def test_object_keys_are_sorted() -> None:
    assert route_of({"role": "video", "cmd": "get"}) == '{"cmd":"get","role":"video"}'


def test_key_order_does_not_change_the_route() -> None:
    assert route_of({"a": 1, "b": 2, "c": 3}) == route_of({"c": 3, "a": 1, "b": 2})


def test_mixed_case_keys_sort_like_locale_compare() -> None:
    assert route_of({"B": 1, "b": 2, "A": 3, "a": 4}) == '{"a":4,"A":3,"b":2,"B":1}'


def test_keys_sort_like_locale_compare_not_by_code_point() -> None:
    pattern = dict.fromkeys(["ab", "a-b", "a_b", "a", "A", "2", "10", "_a"], 0)
    route = '{"_a":0,"10":0,"2":0,"a":0,"A":0,"a_b":0,"a-b":0,"ab":0}'
    assert route_of(pattern) == route


def test_non_ascii_keys_sort_like_locale_compare() -> None:
    pattern = {"한": 1, "b": 2, "é": 3, "e": 4, "😀": 5, "Z": 6}
    assert route_of(pattern) == '{"😀":5,"b":2,"e":4,"é":3,"Z":6,"한":1}'


def test_keys_that_collate_equal_keep_their_insertion_order() -> None:
    # Control characters are ignorable, so localeCompare says 0 and the stable sort keeps order.
    assert route_of({"a\x02": 1, "a\x01": 2}) == '{"a\x02":1,"a\x01":2}'
    assert route_of({"a\x01": 2, "a\x02": 1}) == '{"a\x01":2,"a\x02":1}'


def test_array_index_keys_come_first_among_keys_that_collate_equal() -> None:
    # JavaScript's Object.keys lists array-index keys first, whatever the insertion order.
    assert route_of({"1\x00": 1, "b": 2, "1": 3}) == '{"1":3,"1\x00":1,"b":2}'


def test_lowercase_key_sorts_before_uppercase_key_of_nested_object() -> None:
    assert route_of({"A": 1, "a": {"b": "c"}}) == '{"a":{"b":"c"},"A":1}'


def test_nested_objects_are_canonicalised_too() -> None:
    pattern = {"user": {"name": "kim", "id": 5}, "cmd": "get"}
    assert route_of(pattern) == '{"cmd":"get","user":{"id":5,"name":"kim"}}'


def test_booleans_and_null_are_written_as_json_literals() -> None:
    assert route_of({"c": False, "a": True, "b": None}) == '{"a":true,"b":null,"c":false}'


def test_array_is_an_object_keyed_by_index() -> None:
    assert route_of({"a": [1, "x"]}) == '{"a":{"0":1,"1":"x"}}'


def test_string_values_escape_quotes_and_backslashes() -> None:
    assert route_of({"k": 'va\\l"ue'}) == '{"k":"va\\\\l\\"ue"}'


def test_keys_escape_quotes_and_backslashes() -> None:
    assert route_of({'k"e\\y': 1}) == '{"k\\"e\\\\y":1}'


def test_escaped_quote_cannot_forge_another_key() -> None:
    forged = {"a": 'x","b":"y'}
    assert route_of(forged) != route_of({"a": "x", "b": "y"})


def test_empty_object_route() -> None:
    assert route_of({}) == "{}"


collation_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from("aAbBzZ_-.:0189 éÉèëИиЙй\u0306\u0323\u0301\u0300ะเก한국😀\x00\x01·lL"),
    ),
    max_size=8,
)
_reference = pyuca.Collator()


@settings(max_examples=500, deadline=None)
@given(keys=st.lists(collation_text, min_size=2, max_size=MAX_KEYS, unique=True))
def test_keys_are_ordered_by_pyucas_sort_key(keys: list[str]) -> None:
    route = route_of({key: index for index, key in enumerate(keys)})
    ordered = list(json.loads(route, strict=False))
    sort_keys = [_reference.sort_key(key) for key in ordered]
    assert sorted(ordered) == sorted(keys)
    assert sort_keys == sorted(sort_keys)


@pytest.mark.timeout(10)  # pyuca itself is quadratic: 100k-character keys took minutes
def test_long_keys_are_ordered_in_linear_time() -> None:
    size = 100_000
    pattern = {"b" * size: 1, "한" * size: 2, "a" * size: 3, "И\u0323\u0306" * (size // 3): 4}
    route = route_of(pattern)
    assert [key[0] for key in json.loads(route)] == ["a", "b", "И", "한"]


def _retained_bytes(work: Any) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_long_incoming_string_patterns_are_not_retained() -> None:
    def work() -> None:
        for index in range(20):
            route_of_incoming(f"{index}" + "x" * 500_000)

    assert _retained_bytes(work) < 2_000_000


def test_long_incoming_pattern_keys_are_not_retained() -> None:
    def work() -> None:
        for index in range(10):
            route_of_incoming({f"{index}" + "k" * 500_000: 1, "a": 2})

    assert _retained_bytes(work) < 2_000_000


# -- caps -----------------------------------------------------------------------------------


def test_object_at_max_depth_is_kept() -> None:
    assert route_of(nested(MAX_DEPTH)) == '{"l":' * MAX_DEPTH + '{"x":1}' + "}" * MAX_DEPTH


def test_object_beyond_max_depth_is_replaced_by_a_marker() -> None:
    levels = MAX_DEPTH + 1
    assert route_of(nested(levels)) == '{"l":' * levels + "[MAX_DEPTH_REACHED]" + "}" * levels


def test_object_with_max_keys_is_kept() -> None:
    pattern = {f"k{i:02}": i for i in reversed(range(MAX_KEYS))}
    assert route_of(pattern) == "{" + ",".join(f'"k{i:02}":{i}' for i in range(MAX_KEYS)) + "}"


def test_object_with_too_many_keys_is_replaced_by_a_marker() -> None:
    assert route_of({f"k{i}": i for i in range(MAX_KEYS + 1)}) == "[TOO_MANY_KEYS]"


def test_nested_object_with_too_many_keys_is_replaced_by_a_marker() -> None:
    pattern = {"a": {f"k{i}": i for i in range(MAX_KEYS + 1)}}
    assert route_of(pattern) == '{"a":[TOO_MANY_KEYS]}'


# -- incoming patterns ----------------------------------------------------------------------


def test_incoming_object_pattern_routes_like_the_registered_one() -> None:
    assert route_of_incoming({"role": "video", "cmd": "get"}) == route_of(
        {"cmd": "get", "role": "video"}
    )


def test_incoming_json_string_routes_like_the_object() -> None:
    assert route_of_incoming('{"cmd":"x"}') == route_of({"cmd": "x"})


def test_incoming_json_string_with_unsorted_keys_is_canonicalised() -> None:
    assert route_of_incoming('{"role":"v","cmd":"x"}') == '{"cmd":"x","role":"v"}'


def test_incoming_json_string_with_leading_whitespace_is_parsed_like_json_parse() -> None:
    assert route_of_incoming(' \n{"cmd":"x"}') == route_of({"cmd": "x"})


def test_incoming_quoted_json_string_routes_as_the_unquoted_string() -> None:
    assert route_of_incoming('"video.get"') == "video.get"


def test_incoming_numeric_string_routes_as_the_number() -> None:
    assert route_of_incoming("1.50") == "1.5"


def test_incoming_plain_string_is_its_own_route() -> None:
    assert route_of_incoming("video.get") == "video.get"


def test_incoming_string_that_is_not_valid_json_is_its_own_route() -> None:
    assert route_of_incoming('{"cmd":') == '{"cmd":'


def test_incoming_empty_string_is_its_own_route() -> None:
    assert route_of_incoming("") == ""


def test_incoming_json_array_string_routes_as_an_object_keyed_by_index() -> None:
    assert route_of_wire_string("[1,2]") == '{"0":1,"1":2}'


def test_incoming_number_pattern_routes_as_the_number() -> None:
    assert route_of_incoming(7) == "7"


def test_incoming_pattern_with_huge_keys_is_ordered_by_code_point_not_collated() -> None:
    # Collation puts "a" before "B"; code points put "B" (66) before "a" (97). Collating two
    # million Hangul syllables would block the event loop for seconds.
    tail = "한" * 1_000_000
    route = route_of({"a" + tail: 1, "B" + tail: 2})
    assert route.index('"B') < route.index('"a')
    assert route_of({"a": 1, "B": 2}) == '{"a":1,"B":2}'


def test_a_handler_pattern_with_a_key_over_the_limit_is_refused() -> None:
    router = Router()
    with pytest.raises(ValueError, match="longer than"):
        router.message({"k" * (MAX_KEY_LENGTH + 1): "x"})(lambda: None)
