import pytest
from vidmesh.contracts.media import extension_of, sniff_video


def test_mp4_is_recognised_from_its_ftyp_box(mp4_head: bytes) -> None:
    assert sniff_video(mp4_head) == "video/mp4"


def test_mp4_is_recognised_by_a_compatible_brand() -> None:
    head = b"\x00\x00\x00\x1cftypXXXX\x00\x00\x00\x00abcdmp42efgh"
    assert sniff_video(head) == "video/mp4"


def test_webm_is_recognised_from_its_ebml_doctype(webm_head: bytes) -> None:
    assert sniff_video(webm_head) == "video/webm"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\x00\x00\x18ftyp",
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ",  # QuickTime
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # an HEIF image
        b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska",  # Matroska, not WebM
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 56,
        b"GIF89a" + b"\x00" * 58,
        b"hello, this is plain text and not a video at all" * 2,
    ],
)
def test_anything_else_is_not_a_video(head: bytes) -> None:
    assert sniff_video(head) is None


def test_extension_of_each_type() -> None:
    assert (extension_of("video/mp4"), extension_of("video/webm")) == ("mp4", "webm")
