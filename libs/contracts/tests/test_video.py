"""A byte range resolved against a video's size (the one rule both the gateway's Range header
and the video service's count of whole reads rely on)."""

import pytest
from pydantic import ValidationError
from vidmesh.contracts.video import ByteRange

SIZE = 1000


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ByteRange(first=0, last=99), (0, 100)),
        (ByteRange(first=100), (100, SIZE)),
        (ByteRange(last=100), (900, SIZE)),
        (ByteRange(last=5000), (0, SIZE)),
        (ByteRange(first=900, last=5000), (900, SIZE)),
        (ByteRange(first=999, last=999), (999, SIZE)),
        (ByteRange(first=0, last=0), (0, 1)),
    ],
)
def test_a_range_is_clamped_to_the_size(spec: ByteRange, expected: tuple[int, int]) -> None:
    assert spec.resolve(SIZE) == expected


@pytest.mark.parametrize(
    "spec", [ByteRange(first=SIZE), ByteRange(first=SIZE, last=2000), ByteRange(last=0)]
)
def test_a_range_with_no_byte_of_the_video_resolves_to_none(spec: ByteRange) -> None:
    assert spec.resolve(SIZE) is None


@pytest.mark.parametrize("fields", [{}, {"first": 5, "last": 2}, {"first": -1}])
def test_a_range_that_is_no_range_is_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ByteRange(**fields)
