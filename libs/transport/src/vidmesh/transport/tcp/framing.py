"""The ``<length>#<json>`` frame format of Nest's JsonSocket; pure, no I/O.

``length`` is JavaScript's ``String.length`` of the JSON text: UTF-16 code units, so an emoji
counts 2 and a Korean syllable 1 (but 3 UTF-8 bytes). Bytes are decoded incrementally, as Node's
StringDecoder does, so a read may split a frame, or a UTF-8 character, anywhere.

ASCII, the common case (base64 chunks of video are), is framed on the bytes themselves, where a
byte is a unit: a frame split over many reads is held as those reads and joined once, never
decoded to text.
"""

from __future__ import annotations

import codecs
from typing import Any

import orjson
import pydantic
from vidmesh.transport.errors import CloseReason, FrameError

DELIMITER = "#"
MAX_LENGTH_DIGITS = 10


def utf16_length(text: str) -> int:
    """JavaScript's ``String.length`` of ``text``."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def json_default(value: Any) -> Any:
    """orjson's fallback: pydantic models and sets, tuples as JSON."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_frame(packet: Any) -> bytes:
    """One frame for ``packet``; raises ``TypeError`` if it is not JSON-serialisable."""
    body = orjson.dumps(packet, default=json_default)
    units = len(body) if body.isascii() else utf16_length(body.decode())
    return b"%d#%b" % (units, body)


class FrameDecoder:
    """Turns a byte stream into decoded JSON packets.

    ``feed`` returns every packet completed by the new bytes and raises :class:`FrameError` on
    anything a well-behaved peer never sends. After an error the decoder must be discarded.
    """

    __slots__ = (
        "_ascii_needed",
        "_ascii_parts",
        "_ascii_size",
        "_decoder",
        "_expected",
        "_held_over",
        "_parts",
        "_units",
        "max_frame_length",
    )

    def __init__(self, max_frame_length: int) -> None:
        self.max_frame_length = max_frame_length
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._parts: list[str] = []  # undecoded text, joined only once a whole body has arrived
        self._units = 0  # UTF-16 units in _parts
        self._expected: int | None = None  # body length announced by the current header
        self._held_over = False  # part of a frame, or of a UTF-8 character, is waiting
        # An ASCII frame whose header has arrived but not all its body: the reads, undecoded.
        self._ascii_parts: list[bytes] = []
        self._ascii_size = 0
        self._ascii_needed = 0  # bytes from the frame's first digit to the end of its body

    @property
    def has_partial_frame(self) -> bool:
        """True while part of a frame has arrived and the rest has not."""
        # getstate()[0]: bytes of an incomplete UTF-8 character the text decoder still holds.
        return (
            bool(self._parts)
            or bool(self._ascii_parts)
            or self._expected is not None
            or bool(self._decoder.getstate()[0])
        )

    @property
    def buffered_units(self) -> int:
        """UTF-16 units held for an incomplete frame."""
        return self._units + self._ascii_size

    def feed(self, data: bytes) -> list[Any]:
        packets: list[Any] = []
        try:
            if self._ascii_parts:
                if data.isascii():
                    self._feed_held_ascii(data, packets)
                    return packets
                self._ascii_to_text(packets)
            if not self._held_over and data.isascii():
                self._feed_ascii(data, packets)
            else:
                self._feed_text(self._decoder.decode(data), packets)
        except FrameError as error:
            error.packets = packets
            raise
        return packets

    def _feed_ascii(self, data: bytes, packets: list[Any]) -> None:
        """The common case, parsed without decoding: in ASCII, bytes are UTF-16 units."""
        position = 0
        size = len(data)
        while position < size:
            hash_at = data.find(b"#", position, position + MAX_LENGTH_DIGITS + 1)
            if hash_at < 0:
                break
            body_start = hash_at + 1
            body_end = body_start + self._checked_length(data[position:hash_at])
            if body_end > size:
                break
            packets.append(_parse_json(data[body_start:body_end]))
            position = body_end
        if position >= size:
            return
        rest = data[position:]
        hash_at = rest.find(b"#", 0, MAX_LENGTH_DIGITS + 1)
        if hash_at < 0:  # not even the whole header: the text path keeps it
            self._feed_text(rest.decode("ascii"), packets)
            return
        self._ascii_parts = [rest]
        self._ascii_size = len(rest)
        self._ascii_needed = hash_at + 1 + self._checked_length(rest[:hash_at])

    def _feed_held_ascii(self, data: bytes, packets: list[Any]) -> None:
        """More ASCII for the frame held in ``_ascii_parts``: joined once it is whole."""
        self._ascii_parts.append(data)
        self._ascii_size += len(data)
        if self._ascii_size < self._ascii_needed:
            return
        held = b"".join(self._ascii_parts)
        needed = self._ascii_needed
        self._ascii_parts, self._ascii_size, self._ascii_needed = [], 0, 0
        body_start = held.index(b"#") + 1
        packets.append(_parse_json(memoryview(held)[body_start:needed]))
        if needed < len(held):
            self._feed_ascii(held[needed:], packets)

    def _ascii_to_text(self, packets: list[Any]) -> None:
        """Non-ASCII arrived in the middle of a frame: hand what is held to the text path."""
        held = b"".join(self._ascii_parts).decode("ascii")
        self._ascii_parts, self._ascii_size, self._ascii_needed = [], 0, 0
        self._feed_text(held, packets)

    def _feed_text(self, new: str, packets: list[Any]) -> None:
        if not new:
            self._held_over = self.has_partial_frame
            return
        self._parts.append(new)
        self._units += utf16_length(new)
        if self._expected is not None and self._units < self._expected:
            self._held_over = True
            return  # the body is still arriving: don't join the parts yet
        text = "".join(self._parts) if len(self._parts) > 1 else new
        position = 0
        while position < len(text):
            if self._expected is None:
                position = self._read_length(text, position)
                if self._expected is None:
                    break
            frame_end = self._frame_end(text, position, self._expected)
            if frame_end is None:
                break
            packets.append(_parse_json(text[position:frame_end]))
            self._expected = None
            position = frame_end
        rest = text[position:]
        self._parts = [rest] if rest else []
        self._units = utf16_length(rest)
        self._held_over = self.has_partial_frame

    def _read_length(self, text: str, position: int) -> int:
        hash_at = text.find(DELIMITER, position, position + MAX_LENGTH_DIGITS + 1)
        if hash_at < 0:
            header = text[position:]
            if len(header) > MAX_LENGTH_DIGITS or not (header.isascii() and header.isdigit()):
                raise FrameError(CloseReason.CORRUPTED_LENGTH, _preview(header))
            return position
        self._expected = self._checked_length(text[position:hash_at])
        return hash_at + 1

    def _checked_length(self, header: str | bytes) -> int:
        if not (header.isascii() and header.isdigit()):
            raise FrameError(CloseReason.CORRUPTED_LENGTH, _preview(header))
        length = int(header)
        if length > self.max_frame_length:
            raise FrameError(
                CloseReason.FRAME_TOO_LARGE, f"{length} > {self.max_frame_length} characters"
            )
        return length

    @staticmethod
    def _frame_end(text: str, start: int, units: int) -> int | None:
        """Index where a body of ``units`` UTF-16 units starting at ``start`` ends, if it has."""
        candidate = text[start : start + units]  # every character is at least one unit
        if candidate.isascii():
            return start + units if len(candidate) == units else None
        encoded = candidate.encode("utf-16-le", "surrogatepass")
        if len(encoded) < 2 * units:
            return None
        body = encoded[: 2 * units].decode("utf-16-le", "surrogatepass")
        if body and "\ud800" <= body[-1] <= "\udbff":
            raise FrameError(CloseReason.CORRUPTED_LENGTH, "the length splits a character")
        return start + len(body)


def _parse_json(body: str | bytes | memoryview) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        text = bytes(body) if isinstance(body, memoryview) else body
        raise FrameError(CloseReason.INVALID_JSON, f"{error}: {_preview(text)}") from None


def _preview(text: str | bytes, limit: int = 40) -> str:
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
