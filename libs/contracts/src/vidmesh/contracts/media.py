"""What a file is, from its first bytes (never from the client's Content-Type).

One sniffer for the whole platform: the gateway refuses a wrong type while the body still
streams in, and the video service, which reads the stored object's first bytes before a video
exists, is the authority."""

from __future__ import annotations

from typing import Final, Literal

Mimetype = Literal["video/mp4", "video/webm"]

SNIFF_BYTES: Final = 64
"""Bytes needed to tell MP4 and WebM apart from anything else."""

_MP4_BRANDS: Final = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9",
        b"mp41", b"mp42", b"mp71", b"avc1", b"av01", b"hvc1", b"dash", b"msnv", b"mmp4",
        b"M4V ", b"M4VH", b"M4VP", b"f4v ", b"3gp4", b"3gp5", b"3gp6", b"3g2a",
    }
)  # fmt: skip
"""ISO base media brands of MP4 video (QuickTime ``qt  `` and HEIF/AVIF images are not)."""
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_DOCTYPE_ID: Final = b"\x42\x82"


def sniff_video(head: bytes) -> Mimetype | None:
    """``video/mp4`` or ``video/webm`` from a file's first :data:`SNIFF_BYTES` bytes, else None."""
    if _is_mp4(head):
        return "video/mp4"
    if _is_webm(head):
        return "video/webm"
    return None


def _is_mp4(head: bytes) -> bool:
    # An ISO BMFF file opens with an ``ftyp`` box: size, "ftyp", major brand, minor version,
    # then the compatible brands up to the end of the box.
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    return any(brand in _MP4_BRANDS for brand in brands)


def _is_webm(head: bytes) -> bool:
    # A Matroska EBML header whose DocType element (0x4282) says "webm" (plain Matroska, .mkv,
    # says "matroska" and is refused).
    if not head.startswith(_EBML_MAGIC):
        return False
    at = head.find(_DOCTYPE_ID, len(_EBML_MAGIC))
    if at < 0 or at + 3 > len(head):
        return False
    length_byte = head[at + 2]
    if not length_byte & 0x80:  # only the one-byte length every muxer writes here
        return False
    length = length_byte & 0x7F
    return head[at + 3 : at + 3 + length] == b"webm"


def extension_of(mimetype: Mimetype) -> str:
    """The file extension of a type: ``mp4``, ``webm``."""
    return mimetype.removeprefix("video/")
