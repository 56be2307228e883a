"""Property-based fuzzing of a LIVE TcpServer over real connections.

Each example opens a raw connection, writes two to seven random or mutated frames (random bytes;
valid frames with flipped, inserted or deleted bytes; wrong, huge or non-numeric lengths;
truncated frames), half-closes it and reads until the server closes it. Whatever it answers
must be well-formed answers, and a healthy TcpClient on its own connection must be served all
along: checked by a background caller, every 25 examples, and at the end. Inputs come from a
fixed seed (``derandomize``) so a run is reproducible; the fixture's teardown asserts at least
10,000 frames were thrown, so the run cannot silently shrink.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vidmesh.transport import Context, Router, ServerOptions
from vidmesh.transport.tcp.framing import FrameDecoder, encode_frame
from vidmesh.transport.testing import ServedTcp, serve_tcp

EXAMPLES = 2800
MIN_FRAMES = 10_000
MAX_FRAME_LENGTH = 4096


def make_router() -> Router:
    router = Router()

    @router.message("echo")
    def echo(data: Any) -> Any:
        return data

    @router.message("echo_async")
    async def echo_async(data: Any) -> Any:
        await asyncio.sleep(0)
        return data

    @router.message({"cmd": "sum"})
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    @router.message("count")
    async def count() -> AsyncIterator[int]:
        yield 1
        yield 2

    @router.message("peer")
    async def peer(context: Context) -> str | None:
        return context.peer

    @router.event("evt")
    def on_event(data: Any) -> None:
        pass

    return router


# -- strategies ------------------------------------------------------------------------------

SEEDS = [
    encode_frame(packet)
    for packet in [
        {"pattern": "echo", "data": "안녕하세요 😀", "id": "1"},
        {"pattern": "echo_async", "data": {"nested": [1, 2.5, None, True]}, "id": "2"},
        {"pattern": {"cmd": "sum"}, "data": [1, 2, 3], "id": "3"},
        {"pattern": '{"cmd":"sum"}', "data": [4], "id": 4},
        {"pattern": "count", "data": None, "id": "5"},
        {"pattern": "evt", "data": {"e": 1}},
        {"pattern": "peer", "id": "6", "headers": {"traceparent": "00-ab-cd-01"}},
        {"pattern": "missing", "data": [], "id": "7"},
        {"pattern": "echo", "data": "#12#{}", "id": "8"},
    ]
]
strings = st.sampled_from(
    ["", "echo", "안녕", "😀", 'a"b\\c', "\u2028", "#", "12#", "\x00"]
) | st.text(max_size=5)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | strings,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3)
    ),
    max_leaves=4,
)
patterns = (
    st.sampled_from(["echo", "echo_async", "count", "evt", "peer", "missing", ""])
    | st.fixed_dictionaries({"cmd": st.sampled_from(["sum", "other"])})
    | json_values
)
packets = st.fixed_dictionaries(
    {"pattern": patterns, "data": json_values},
    optional={
        "id": strings | st.integers(0, 10**6) | json_values,
        "headers": st.dictionaries(strings, strings, max_size=2) | json_values,
    },
)
valid_frames = st.sampled_from(SEEDS) | packets.map(encode_frame)


@st.composite
def flipped(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_frames))
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= draw(st.integers(1, 255))
    return bytes(data)


@st.composite
def inserted(draw: st.DrawFn) -> bytes:
    data = draw(valid_frames)
    index = draw(st.integers(0, len(data)))
    return data[:index] + draw(st.binary(min_size=1, max_size=8)) + data[index:]


@st.composite
def deleted(draw: st.DrawFn) -> bytes:
    data = draw(valid_frames)
    index = draw(st.integers(0, len(data) - 1))
    return data[:index] + data[index + draw(st.integers(1, 8)) :]


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    data = draw(valid_frames)
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def wrong_length(draw: st.DrawFn) -> bytes:
    header, body = draw(valid_frames).split(b"#", 1)
    length = int(header)
    wrong = draw(
        st.integers(0, length - 1)
        | st.integers(length + 1, length + 64)
        | st.integers(MAX_FRAME_LENGTH + 1, 10**10 - 1)
    )
    return b"%d#%b" % (wrong, body)


@st.composite
def strange_header(draw: st.DrawFn) -> bytes:
    body = draw(valid_frames).split(b"#", 1)[1]
    header = draw(
        st.sampled_from([b"", b"-1", b"+5", b"0x1f", b" 12", b"1e3", b"99999999999999"])
        | st.binary(min_size=1, max_size=12)
    )
    return header + b"#" + body


random_bytes = st.binary(min_size=1, max_size=300)
fuzzed_frames = st.one_of(
    random_bytes,
    valid_frames,
    valid_frames,  # twice as likely: so that mutated frames often follow valid ones
    flipped(),
    inserted(),
    deleted(),
    truncated(),
    wrong_length(),
    strange_header(),
)


# -- the live server --------------------------------------------------------------------------


@dataclass
class Fuzzing:
    served: ServedTcp
    peer: str
    examples: int = 0
    frames: int = 0
    answers: int = 0
    background_calls: int = 0
    failures: list[BaseException] = field(default_factory=list)

    async def check_healthy(self) -> None:
        mark = [self.examples, self.frames]
        assert await self.served.client.send("peer", timeout=2) == self.peer
        assert await self.served.client.send("echo", mark, timeout=2) == mark

    async def keep_calling(self) -> None:
        """A healthy caller running alongside the fuzzing."""
        while True:
            try:
                await self.check_healthy()
                self.background_calls += 1
            except Exception as error:  # reported by the fixture teardown
                self.failures.append(error)
                return
            await asyncio.sleep(0.002)


@pytest.fixture
async def fuzzing() -> AsyncIterator[Fuzzing]:
    options = ServerOptions(max_frame_length=MAX_FRAME_LENGTH)
    async with serve_tcp(make_router(), options=options) as served:
        state = Fuzzing(served, peer=await served.client.send("peer"))
        caller = asyncio.ensure_future(state.keep_calling())
        try:
            yield state
        finally:
            caller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await caller
        print(  # visible with -s
            f"fuzz: {state.examples} connections, {state.frames} frames, "
            f"{state.answers} answers, {state.background_calls} background calls"
        )
        assert state.failures == []
        await state.check_healthy()
        assert state.background_calls > 100
        assert state.examples >= EXAMPLES
        assert state.frames >= MIN_FRAMES, f"only {state.frames} frames were thrown"
        assert state.answers > 0  # some fuzzed frames were valid requests, and answered
        assert len(served.server.connections) == 1  # only the healthy client's is left


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    # Thousands of "connection_closed" warnings would dominate the run's time and output.
    from structlog.testing import capture_logs

    with capture_logs():
        yield


async def throw(port: int, data: bytes) -> bytes:
    """Write ``data`` on a fresh connection, half-close it, return all the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            writer.write_eof()
        chunks = []
        async with asyncio.timeout(3):  # the server must close the connection
            while True:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one live server for all the examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(frames=st.lists(fuzzed_frames, min_size=2, max_size=7))
async def test_random_and_mutated_frames_never_break_a_live_server(
    fuzzing: Fuzzing, quiet_logs: None, frames: list[bytes]
) -> None:
    fuzzing.examples += 1
    fuzzing.frames += len(frames)
    replies = FrameDecoder(16 * 1024 * 1024).feed(
        await throw(fuzzing.served.port, b"".join(frames))
    )
    for reply in replies:
        assert type(reply) is dict
        assert "id" in reply
        assert "isDisposed" in reply
    fuzzing.answers += len(replies)
    if fuzzing.examples % 25 == 0:
        await fuzzing.check_healthy()
