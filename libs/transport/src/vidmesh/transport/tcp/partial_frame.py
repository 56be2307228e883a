"""The frame a connection is in the middle of receiving: since when, and the bytes it holds.

Its deadline counts from its first byte, so a peer trickling one byte now and then cannot hold
a connection (and the bytes it sent) open for ever; the bytes feed the server-wide budget of
incomplete frames (``ServerOptions.max_incomplete_bytes``).
"""

from __future__ import annotations

from vidmesh.transport.tcp.framing import FrameDecoder


class PartialFrame:
    __slots__ = ("_paused_at", "held", "started_at")

    def __init__(self) -> None:
        self.started_at: float | None = None
        """Loop time of the incomplete frame's first byte; None between frames."""
        self.held = 0
        """Units (bytes, for ASCII) the decoder holds for it."""
        self._paused_at: float | None = None

    def update(self, decoder: FrameDecoder, completed: bool, now: float) -> int:
        """After a read: ``completed`` if it finished a frame (what is left began in it).
        Returns the change in bytes held."""
        if not decoder.has_partial_frame:
            self.started_at = None
        elif completed or self.started_at is None:
            self.started_at = now
        held = decoder.buffered_units
        change, self.held = held - self.held, held
        return change

    def release(self) -> int:
        """The connection is gone: the bytes it held, to give back to the budget."""
        held, self.held = self.held, 0
        return held

    def pause(self, now: float) -> None:
        """We stop reading (backpressure): the time until :meth:`resume` is not the peer's."""
        self._paused_at = now

    def resume(self, now: float) -> None:
        if self._paused_at is not None and self.started_at is not None:
            self.started_at += now - self._paused_at
        self._paused_at = None

    def overdue(self, now: float, deadline: float) -> bool:
        return self.started_at is not None and now - self.started_at > deadline
