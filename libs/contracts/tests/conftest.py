import pytest

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
WEBM_HEAD = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"
)


@pytest.fixture
def mp4_head() -> bytes:
    """The first bytes of an MP4 file (an ftyp box, then a free box)."""
    return MP4_HEAD


@pytest.fixture
def webm_head() -> bytes:
    """The first bytes of a WebM file (its EBML header)."""
    return WEBM_HEAD
