import pytest

from vidmesh_api_gateway.downloads import (
    ByteRange,
    content_disposition,
    etag_matches,
    parse_range,
    range_applies,
)
from vidmesh_api_gateway.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-", ByteRange(100, SIZE)),
        ("bytes=-100", ByteRange(900, SIZE)),
        ("bytes=-5000", ByteRange(0, SIZE)),
        ("bytes=900-5000", ByteRange(900, SIZE)),
        ("bytes=999-999", ByteRange(999, SIZE)),
        (" bytes = 0 - 0 ", ByteRange(0, 1)),
    ],
)
def test_range_is_parsed_and_clamped_to_the_size(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header", [None, "", "items=0-1", "bytes=0-1,5-6", "bytes=abc", "bytes=-", "bytes=5-2"]
)
def test_range_we_do_not_serve_is_ignored(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, SIZE)
    assert caught.value.headers == {"Content-Range": f"bytes */{SIZE}"}


def test_content_range_names_the_last_byte_and_the_size() -> None:
    assert ByteRange(0, 100).content_range(SIZE) == "bytes 0-99/1000"
    assert ByteRange(0, 100).length == 100


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
        (None, False),
    ],
)
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert etag_matches(header, "abc") is matches


def test_if_range_applies_the_range_only_for_the_same_etag() -> None:
    assert range_applies(None, "abc")
    assert range_applies('"abc"', "abc")
    assert not range_applies('"old"', "abc")


def test_content_disposition_quotes_an_ascii_name() -> None:
    assert content_disposition("clip.mp4") == 'attachment; filename="clip.mp4"'


def test_content_disposition_adds_utf8_filename_star_for_other_names() -> None:
    header = content_disposition("vidéo 1.mp4")
    assert header == "attachment; filename=\"vid_o 1.mp4\"; filename*=UTF-8''vid%C3%A9o%201.mp4"


def test_content_disposition_cannot_be_used_to_inject_headers_or_quotes() -> None:
    header = content_disposition('a"b\r\nSet-Cookie: x.mp4')
    assert "\r" not in header
    assert "\n" not in header
    assert header.startswith('attachment; filename="a_bSet-Cookie: x.mp4"')
