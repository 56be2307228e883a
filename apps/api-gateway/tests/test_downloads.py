import pytest
from vidmesh.contracts.video import ByteRange

from vidmesh_api_gateway.downloads import (
    content_disposition,
    content_range,
    etag_matches,
    parse_range,
    range_applies,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(first=0, last=99)),
        ("bytes=100-", ByteRange(first=100)),
        ("bytes=-100", ByteRange(last=100)),
        ("bytes=-0", ByteRange(last=0)),
        ("bytes=999-999", ByteRange(first=999, last=999)),
        (" bytes = 0 - 0 ", ByteRange(first=0, last=0)),
    ],
)
def test_range_is_parsed_into_one_byte_range_spec(header: str, expected: ByteRange) -> None:
    assert parse_range(header) == expected


@pytest.mark.parametrize(
    "header", [None, "", "items=0-1", "bytes=0-1,5-6", "bytes=abc", "bytes=-", "bytes=5-2"]
)
def test_range_we_do_not_serve_is_ignored(header: str | None) -> None:
    assert parse_range(header) is None


def test_content_range_names_the_last_byte_and_the_size() -> None:
    assert content_range(0, 100, 1000) == "bytes 0-99/1000"


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
