"""The streamed upload against an in-memory stand-in for the video service's upload patterns
(pure logic: the parser, chunking, limits and aborts)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from vidmesh.contracts import video as contract

from vidmesh_api_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from vidmesh_api_gateway.uploads import UploadStream, multipart_boundary

MultipartBuilder = Callable[..., tuple[bytes, str]]


class RecordingSink:
    """Keeps what an upload sends, as the video service would."""

    def __init__(self) -> None:
        self.started: list[contract.UploadStart] = []
        self.chunks: list[contract.UploadChunk] = []
        self.finished: list[contract.UploadFinish] = []
        self.aborted: list[str] = []

    async def upload_start(self, start: contract.UploadStart) -> contract.UploadTicket:
        self.started.append(start)
        return contract.UploadTicket(upload_id="u1")

    async def upload_chunk(self, chunk: contract.UploadChunk) -> contract.UploadProgress:
        self.chunks.append(chunk)
        return contract.UploadProgress(received=chunk.offset + len(self.decode(chunk)))

    async def upload_finish(self, finish: contract.UploadFinish) -> contract.Video:
        self.finished.append(finish)
        return contract.Video(
            id="v1",
            title=finish.title,
            mimetype="video/mp4",
            size=len(self.received()),
            user_id="user-1",
            filename="clip.mp4",
            etag="e",
            created_at=datetime.now(UTC),
        )

    async def upload_abort(self, ticket: contract.UploadTicket) -> None:
        self.aborted.append(ticket.upload_id)

    @staticmethod
    def decode(chunk: contract.UploadChunk) -> bytes:
        return base64.b64decode(chunk.data)

    def received(self) -> bytes:
        return b"".join(self.decode(chunk) for chunk in self.chunks)


async def run_upload(
    sink: RecordingSink,
    body: bytes,
    content_type: str,
    *,
    piece: int = 4096,
    max_bytes: int = 10**8,
) -> contract.Video:
    upload = UploadStream(
        sink, user_id="user-1", boundary=multipart_boundary(content_type), max_bytes=max_bytes
    )
    try:
        for at in range(0, len(body), piece):
            await upload.feed(body[at : at + piece])
        return await upload.finish()
    except BaseException:
        await upload.abort()
        raise


async def test_upload_forwards_the_file_in_chunks_of_at_most_chunk_size(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + bytes(range(256)) * 3000  # about 3 chunks
    body, content_type = multipart(("title", b"My clip"), ("video", video, "clip.mp4"))
    sink = RecordingSink()
    created = await run_upload(sink, body, content_type, piece=10_000)
    assert created.title == "My clip"
    assert sink.received() == video
    assert all(len(sink.decode(chunk)) <= contract.CHUNK_SIZE for chunk in sink.chunks)
    assert [chunk.offset for chunk in sink.chunks] == [
        i * contract.CHUNK_SIZE for i in range(len(sink.chunks))
    ]
    assert sink.started == [contract.UploadStart(user_id="user-1", filename="clip.mp4")]
    assert sink.finished == [contract.UploadFinish(upload_id="u1", title="My clip")]


async def test_title_may_follow_the_file(multipart: MultipartBuilder, webm_head: bytes) -> None:
    body, content_type = multipart(("video", webm_head + b"x" * 100, "a.webm"), ("title", b"Late"))
    sink = RecordingSink()
    created = await run_upload(sink, body, content_type, piece=7)
    assert created.title == "Late"
    assert sink.received() == webm_head + b"x" * 100


async def test_file_that_is_not_a_video_is_refused_before_anything_is_sent(
    multipart: MultipartBuilder,
) -> None:
    body, content_type = multipart(("title", b"Text"), ("video", b"just text " * 100, "a.mp4"))
    sink = RecordingSink()
    with pytest.raises(UnsupportedMediaType):
        await run_upload(sink, body, content_type)
    assert sink.started == []
    assert sink.chunks == []


async def test_file_past_the_limit_is_refused_and_the_upload_dropped(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + b"\x00" * (3 * contract.CHUNK_SIZE)
    body, content_type = multipart(("title", b"Big"), ("video", video, "big.mp4"))
    sink = RecordingSink()
    with pytest.raises(PayloadTooLarge):
        await run_upload(sink, body, content_type, piece=65536, max_bytes=2 * contract.CHUNK_SIZE)
    assert sink.aborted == ["u1"]
    assert sink.finished == []
    assert len(sink.received()) <= 2 * contract.CHUNK_SIZE


async def test_upload_without_a_title_is_refused_and_dropped(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    body, content_type = multipart(("video", mp4_head * 4, "a.mp4"))
    sink = RecordingSink()
    with pytest.raises(BadRequest, match="title"):
        await run_upload(sink, body, content_type)
    assert sink.aborted == ["u1"]


async def test_upload_without_a_file_is_refused(multipart: MultipartBuilder) -> None:
    body, content_type = multipart(("title", b"Nothing"))
    sink = RecordingSink()
    with pytest.raises(BadRequest, match="'video' file is required"):
        await run_upload(sink, body, content_type)
    assert sink.started == []


async def test_empty_file_is_refused(multipart: MultipartBuilder) -> None:
    body, content_type = multipart(("title", b"Empty"), ("video", b"", "a.mp4"))
    with pytest.raises(BadRequest, match="empty"):
        await run_upload(RecordingSink(), body, content_type)


@pytest.mark.parametrize("title", [b"x", b"y" * 101, b"\xff\xfe"])
async def test_title_out_of_bounds_is_refused_before_the_file_is_sent(
    multipart: MultipartBuilder, mp4_head: bytes, title: bytes
) -> None:
    body, content_type = multipart(("title", title), ("video", mp4_head * 4, "a.mp4"))
    sink = RecordingSink()
    with pytest.raises(BadRequest, match="title"):
        await run_upload(sink, body, content_type)
    assert sink.finished == []


async def test_second_file_part_is_refused(multipart: MultipartBuilder, mp4_head: bytes) -> None:
    body, content_type = multipart(
        ("title", b"Two"), ("video", mp4_head * 2, "a.mp4"), ("video", mp4_head * 2, "b.mp4")
    )
    sink = RecordingSink()
    with pytest.raises(BadRequest, match="Only one"):
        await run_upload(sink, body, content_type, piece=40)
    assert sink.aborted == ["u1"]
    assert sink.finished == []


async def test_truncated_body_is_refused_and_dropped(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    body, content_type = multipart(("title", b"Cut"), ("video", mp4_head * 100, "a.mp4"))
    sink = RecordingSink()
    with pytest.raises(BadRequest, match="Incomplete"):
        await run_upload(sink, body[: len(body) // 2], content_type)
    assert sink.aborted == ["u1"]


async def test_file_name_loses_any_path(multipart: MultipartBuilder, mp4_head: bytes) -> None:
    body, content_type = multipart(("title", b"Path"), ("video", mp4_head, "C:\\Users\\a\\b.mp4"))
    sink = RecordingSink()
    await run_upload(sink, body, content_type)
    assert sink.started[0].filename == "b.mp4"


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", "text/plain; boundary=x"]
)
def test_body_that_is_not_multipart_form_data_is_refused(content_type: str | None) -> None:
    with pytest.raises(BadRequest, match="multipart"):
        multipart_boundary(content_type)
