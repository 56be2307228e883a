"""Limits and timeouts, each with a safe default. All sizes of frames are in UTF-16 units."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How a TCP server protects itself from slow, stuck or hostile peers."""

    max_frame_length: int = 16 * MiB
    """A frame announcing a longer body closes the connection (Nest: maxBufferSize). Roomy for
    a library (a Nest peer's megabyte payloads); the vidmesh services take 1 Mi
    (``vidmesh.kit.settings.SERVICE_FRAME_LENGTH``), the bytes held across connections are
    capped by ``max_incomplete_bytes``."""
    incomplete_frame_timeout: float = 30.0
    """Seconds a frame may take from its first byte to its last, however steadily it trickles
    (time the server itself stops reading, for backpressure, is not counted)."""
    max_incomplete_bytes: int = 32 * MiB
    """Bytes held in incomplete frames across every connection of the server; a read that
    would take the total past it closes its connection instead of being held."""
    idle_timeout: float | None = 600.0
    """Seconds without a byte and without work in flight before the socket is closed."""
    max_connections: int = 1024
    """Connections beyond this are closed as soon as they are accepted."""
    max_in_flight_per_connection: int = 1024
    """Requests one connection may have running; past it the server stops reading from it."""
    write_buffer_high_water: int = 1 * MiB
    """Unsent bytes at which the server stops reading from that peer until it catches up."""
    max_send_buffer: int = 64 * MiB
    """Unsent bytes at which a peer that never reads is disconnected (Nest: maxSendBufferSize)."""
    drain_timeout: float = 30.0
    """Seconds a graceful shutdown waits for in-flight handlers before cancelling them."""
    close_timeout: float = 5.0
    """Seconds a closing connection may take to hand its last answers over before it is cut off."""
    backlog: int = 1024


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a TCP client connects, waits and gives up."""

    request_timeout: float | None = 30.0
    """Default seconds to wait for a whole answer; a call may pass its own."""
    connect_timeout: float = 5.0
    connect_attempts: int = 3
    """Tries per call to (re)connect before it fails with ServiceUnavailable."""
    reconnect_backoff: float = 0.05
    """First pause between connect attempts; it doubles on each further attempt."""
    max_frame_length: int = 64 * MiB
    write_buffer_high_water: int = 1 * MiB
