"""Sample videos: the bytes a sniffer checks, exact sizes, the same bytes for the same seed."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import pytest
from vidmesh.devstack.samples import (
    MP4_MIN_SIZE,
    WEBM_MIN_SIZE,
    iter_sample_mp4,
    iter_sample_webm,
    sample_mp4,
    sample_webm,
)

Sample = Callable[..., bytes]
Chunks = Callable[..., Iterator[bytes]]


def test_mp4_starts_with_an_isom_ftyp_box_followed_by_mdat() -> None:
    data = sample_mp4(1000)
    ftyp_size, kind, brand = struct.unpack(">I4s4s", data[:12])
    assert (kind, brand) == (b"ftyp", b"isom")
    mdat_size, mdat = struct.unpack(">I4s", data[ftyp_size : ftyp_size + 8])
    assert mdat == b"mdat"
    assert ftyp_size + mdat_size == len(data) == 1000


def test_webm_starts_with_an_ebml_header_naming_webm() -> None:
    data = sample_webm(1000)
    assert data[:4] == bytes.fromhex("1a45dfa3")
    header_size = data[4] & 0x7F
    assert b"\x42\x82\x84webm" in data[5 : 5 + header_size]
    assert data[5 + header_size : 9 + header_size] == bytes.fromhex("18538067")  # Segment
    segment_size = int.from_bytes(data[9 + header_size : 17 + header_size], "big") & (2**56 - 1)
    assert 17 + header_size + segment_size == len(data) == 1000


@pytest.mark.parametrize("make", [sample_mp4, sample_webm])
@pytest.mark.parametrize("size", [WEBM_MIN_SIZE, 4096, 1024 * 1024 + 3])
def test_samples_have_exactly_the_size_asked_for(make: Sample, size: int) -> None:
    assert len(make(size)) == size


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    assert sample_mp4(5000, seed=1) == sample_mp4(5000, seed=1)
    assert sample_mp4(5000, seed=1) != sample_mp4(5000, seed=2)


@pytest.mark.parametrize(
    ("chunks", "whole"), [(iter_sample_mp4, sample_mp4), (iter_sample_webm, sample_webm)]
)
def test_chunks_join_to_the_whole_sample(chunks: Chunks, whole: Sample) -> None:
    size = 3 * 4096 + 17
    pieces = list(chunks(size, seed=7, chunk_size=4096))
    assert max(len(piece) for piece in pieces) <= 4096
    assert b"".join(pieces) == whole(size, seed=7)


def test_a_200_mib_sample_streams_in_one_mib_chunks() -> None:
    size = 200 * 1024 * 1024
    total = 0
    largest = 0
    for chunk in iter_sample_mp4(size):
        total += len(chunk)
        largest = max(largest, len(chunk))
    assert total == size
    assert largest == 1024 * 1024


def test_a_size_below_the_headers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        sample_mp4(MP4_MIN_SIZE - 1)
    with pytest.raises(ValueError, match="at least"):
        sample_webm(WEBM_MIN_SIZE - 1)
