"""Sample videos for the demo, the end-to-end tests and the benchmarks.

Not playable: just the bytes a type sniffer looks at, then filler. MP4 is an ISO BMFF ``ftyp`` box
(major brand ``isom``) followed by one ``mdat`` box holding the filler; WebM is an EBML header
with DocType ``webm`` followed by a Segment holding one Void element of filler. The filler comes
from ``random.Random(seed)``, so a size and a seed always give the same bytes, and the ``iter_``
forms yield them in chunks (a 200 MiB sample never sits in memory whole).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from typing import Final

CHUNK_SIZE: Final = 1024 * 1024

_FTYP: Final = struct.pack(">I4s4sI", 32, b"ftyp", b"isom", 0x200) + b"isomiso2avc1mp41"
_MDAT_HEADER: Final = 8
_MDAT_LARGE_HEADER: Final = 16  # 64-bit size, past 4 GiB

# EBML header: EBMLVersion 1, EBMLReadVersion 1, EBMLMaxIDLength 4, EBMLMaxSizeLength 8,
# DocType "webm", DocTypeVersion 4, DocTypeReadVersion 2.
_EBML_BODY: Final = bytes.fromhex(
    "4286 8101 42f7 8101 42f2 8104 42f3 8108 4282 84 7765626d 4287 8104 4285 8102"
)
_EBML: Final = bytes.fromhex("1a45dfa3") + bytes([0x80 | len(_EBML_BODY)]) + _EBML_BODY
_SEGMENT_ID: Final = bytes.fromhex("18538067")
_VOID_ID: Final = b"\xec"
_VINT8: Final = 8  # every size below is written as an 8-byte EBML variable-length integer

MP4_MIN_SIZE: Final = len(_FTYP) + _MDAT_HEADER
WEBM_MIN_SIZE: Final = len(_EBML) + len(_SEGMENT_ID) + _VINT8 + len(_VOID_ID) + _VINT8


def sample_mp4(size: int, *, seed: int = 0) -> bytes:
    """``size`` bytes a sniffer takes for MP4 (``video/mp4``)."""
    return b"".join(iter_sample_mp4(size, seed=seed))


def sample_webm(size: int, *, seed: int = 0) -> bytes:
    """``size`` bytes a sniffer takes for WebM (``video/webm``)."""
    return b"".join(iter_sample_webm(size, seed=seed))


def iter_sample_mp4(size: int, *, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``sample_mp4(size, seed=seed)`` in chunks of at most ``chunk_size`` bytes."""
    _check_size(size, MP4_MIN_SIZE, "MP4")
    mdat = size - len(_FTYP)
    if mdat <= 0xFFFF_FFFF:
        header = struct.pack(">I4s", mdat, b"mdat")
    else:
        header = struct.pack(">I4sQ", 1, b"mdat", mdat)
    yield _FTYP + header
    yield from _filler(size - len(_FTYP) - len(header), seed, chunk_size)


def iter_sample_webm(size: int, *, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``sample_webm(size, seed=seed)`` in chunks of at most ``chunk_size`` bytes."""
    _check_size(size, WEBM_MIN_SIZE, "WebM")
    segment = size - len(_EBML) - len(_SEGMENT_ID) - _VINT8
    void = segment - len(_VOID_ID) - _VINT8
    yield _EBML + _SEGMENT_ID + _vint8(segment) + _VOID_ID + _vint8(void)
    yield from _filler(void, seed, chunk_size)


def _check_size(size: int, minimum: int, kind: str) -> None:
    if size < minimum:
        raise ValueError(f"a sample {kind} file has at least {minimum} bytes, not {size}")


def _vint8(value: int) -> bytes:
    """An EBML variable-length integer in 8 bytes: marker 0x01, then 56 bits of value."""
    return (0x01 << 56 | value).to_bytes(8, "big")


def _filler(size: int, seed: int, chunk_size: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    while size > 0:
        n = min(size, chunk_size)
        yield rng.randbytes(n)
        size -= n
