"""Kafka values and headers, encoded and decoded by Nest's rules (KafkaRequestSerializer out,
KafkaParser in)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from vidmesh.transport.kafka.codec import (
    decode_headers,
    decode_value,
    encode_headers,
    encode_value,
    header_text,
)

TITLE = "Ünïcødé 视频 🎬"


class Video(pydantic.BaseModel):
    id: int
    title: str


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("plain text", b"plain text"),
        (TITLE, TITLE.encode()),
        ("", b""),
        ('{"looks": "like json"}', b'{"looks": "like json"}'),  # a string goes as it is
        ({"id": 1, "title": TITLE}, f'{{"id":1,"title":"{TITLE}"}}'.encode()),  # UTF-8, no \\u
        ([1, "two", None], b'[1,"two",null]'),
        ({}, b"{}"),
        ([], b"[]"),
        (5, b"5"),
        (-2.5, b"-2.5"),
        (True, b"true"),
        (False, b"false"),
        (b"\x00\x01raw", b"\x00\x01raw"),
        (Video(id=3, title=TITLE), f'{{"id":3,"title":"{TITLE}"}}'.encode()),
        ((1, 2), b"[1,2]"),
    ],
)
def test_encode_value_follows_nests_serializer(value: Any, wire: bytes) -> None:
    assert encode_value(value) == wire


def test_none_is_encoded_as_a_null_value() -> None:
    assert encode_value(None) is None
    assert decode_value(None) is None


def test_encoding_something_that_is_not_json_raises_type_error() -> None:
    with pytest.raises(TypeError):
        encode_value(object())


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (b'{"id":1,"title":"x"}', {"id": 1, "title": "x"}),
        (f'{{"title":"{TITLE}"}}'.encode(), {"title": TITLE}),
        (b"[1,2,3]", [1, 2, 3]),
        (b'[{"a":[]}]', [{"a": []}]),
        (b"plain text", "plain text"),
        (TITLE.encode(), TITLE),
        (b"", ""),
        # numbers, booleans and null arrive as text, as from Nest
        (b"5", "5"),
        (b"-2.5", "-2.5"),
        (b"true", "true"),
        (b"null", "null"),
        (b'"quoted"', '"quoted"'),
        # JSON-looking but broken: kept as the string it is
        (b"{not json", "{not json"),
        (b"[1,", "[1,"),
        # leading whitespace: not JSON by Nest's first-character rule
        (b' {"a":1}', ' {"a":1}'),
    ],
)
def test_decode_value_follows_nests_parser(wire: bytes, value: Any) -> None:
    assert decode_value(wire) == value


@pytest.mark.parametrize(
    "wire", [b"\x00", b"\x00\x00\x00\x00\x01{}", b'\x00{"a":1}', b"\x00\xff\xfe"]
)
def test_a_value_starting_with_a_zero_byte_stays_bytes(wire: bytes) -> None:
    decoded = decode_value(wire)
    assert isinstance(decoded, bytes)
    assert decoded == wire


def test_invalid_utf8_is_decoded_with_replacement_characters() -> None:
    assert decode_value(b"ab\xffcd") == "ab\ufffdcd"


@pytest.mark.parametrize(
    "value",
    [{"title": TITLE, "tags": ["ä", "ß"], "nested": {"n": [1, 2.5, None, True]}}, [TITLE], TITLE],
)
def test_objects_arrays_and_strings_round_trip(value: Any) -> None:
    assert decode_value(encode_value(value)) == value


def test_headers_are_encoded_with_the_value_rules_in_order() -> None:
    encoded = encode_headers(
        {"traceparent": "00-abc-01", "lang": TITLE, "count": 3, "meta": {"a": 1}, "none": None}
    )
    assert encoded == [
        ("traceparent", b"00-abc-01"),
        ("lang", TITLE.encode()),
        ("count", b"3"),
        ("meta", b'{"a":1}'),
        ("none", b""),
    ]


def test_no_headers_encode_to_an_empty_list() -> None:
    assert encode_headers(None) == []
    assert encode_headers({}) == []


def test_headers_are_decoded_with_the_value_rules() -> None:
    raw = [("traceparent", b"00-abc-01"), ("lang", TITLE.encode()), ("meta", b'{"a":1}')]
    assert decode_headers(raw) == {"traceparent": "00-abc-01", "lang": TITLE, "meta": {"a": 1}}
    assert decode_headers(None) == {}
    assert decode_headers([]) == {}


def test_a_repeated_header_decodes_to_its_last_value() -> None:
    assert decode_headers([("x", b"1"), ("x", b"2")]) == {"x": "2"}


def test_header_text_reads_one_header_without_json_parsing() -> None:
    raw = [("kafka_correlationId", b"abc"), ("meta", b'{"a":1}'), ("lang", TITLE.encode())]
    assert header_text(raw, "kafka_correlationId") == "abc"
    assert header_text(raw, "meta") == '{"a":1}'
    assert header_text(raw, "lang") == TITLE
    assert header_text(raw, "missing") is None
    assert header_text(None, "missing") is None
    assert header_text([("empty", b"")], "empty") == ""
