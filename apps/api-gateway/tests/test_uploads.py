"""The streamed upload against in-memory stand-ins for the video service's upload grants and
the object store (pure logic: the parser, parts, limits and aborts)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from vidmesh.contracts import video as contract

from vidmesh_api_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from vidmesh_api_gateway.uploads import UploadStream, multipart_boundary

MultipartBuilder = Callable[..., tuple[bytes, str]]
PART = contract.MIN_PART_SIZE


class RecordingGrants:
    """Grants as the video service would: one PUT for a small file of known size, a multipart
    upload of PART-byte parts otherwise."""

    def __init__(self) -> None:
        self.started: list[contract.UploadStart] = []
        self.part_requests: list[int] = []
        self.finished: list[contract.UploadFinish] = []
        self.aborted: list[str] = []

    async def upload_start(self, start: contract.UploadStart) -> contract.UploadGrant:
        self.started.append(start)
        parts = []
        if start.size is not None and start.size <= PART:
            parts = [contract.PartUrl(number=1, url="store://u1/whole")]
        return contract.UploadGrant(
            upload_id="u1", part_size=PART, parts=parts, expires_at=datetime.now(UTC)
        )

    async def upload_part(self, request: contract.PartRequest) -> contract.PartUrl:
        self.part_requests.append(request.number)
        return contract.PartUrl(number=request.number, url=f"store://u1/{request.number}")

    async def upload_finish(self, finish: contract.UploadFinish) -> contract.Video:
        self.finished.append(finish)
        return contract.Video(
            id="v1",
            title=finish.title,
            mimetype="video/mp4",
            size=0,
            user_id="user-1",
            filename="clip.mp4",
            etag="e",
            created_at=datetime.now(UTC),
        )

    async def upload_abort(self, lookup: contract.UploadLookup) -> None:
        self.aborted.append(lookup.upload_id)


class RecordingStore:
    """Keeps each PUT, in order."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, bytes]] = []

    async def put(self, url: str, data: bytes | bytearray | memoryview) -> None:
        self.puts.append((url, bytes(data)))

    def received(self) -> bytes:
        return b"".join(data for _, data in self.puts)


class Recording:
    def __init__(self) -> None:
        self.grants = RecordingGrants()
        self.store = RecordingStore()


async def run_upload(
    sink: Recording,
    body: bytes,
    content_type: str,
    *,
    piece: int = 4096,
    max_bytes: int = 10**8,
) -> contract.Video:
    upload = UploadStream(
        sink.grants,
        sink.store,
        user_id="user-1",
        boundary=multipart_boundary(content_type),
        max_bytes=max_bytes,
    )
    try:
        for at in range(0, len(body), piece):
            await upload.feed(body[at : at + piece])
        return await upload.finish()
    except BaseException:
        await upload.abort()
        raise


async def test_a_small_file_is_one_put_of_a_declared_size(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + bytes(range(256)) * 3000
    body, content_type = multipart(("title", b"My clip"), ("video", video, "clip.mp4"))
    sink = Recording()
    created = await run_upload(sink, body, content_type, piece=10_000)
    assert created.title == "My clip"
    assert sink.store.puts == [("store://u1/whole", video)]
    start = contract.UploadStart(user_id="user-1", filename="clip.mp4", size=len(video))
    assert sink.grants.started == [start]
    finish = contract.UploadFinish(upload_id="u1", user_id="user-1", title="My clip")
    assert sink.grants.finished == [finish]


async def test_a_large_file_is_put_part_by_part(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + b"\x01" * (2 * PART + 1000)
    body, content_type = multipart(("title", b"Large"), ("video", video, "big.mp4"))
    sink = Recording()
    await run_upload(sink, body, content_type, piece=65536)
    assert sink.grants.started[0].size is None  # not known when the upload had to start
    assert [url for url, _ in sink.store.puts] == ["store://u1/1", "store://u1/2", "store://u1/3"]
    assert [len(data) for _, data in sink.store.puts] == [PART, PART, len(video) - 2 * PART]
    assert sink.store.received() == video


async def test_title_may_follow_the_file(multipart: MultipartBuilder, webm_head: bytes) -> None:
    body, content_type = multipart(("video", webm_head + b"x" * 100, "a.webm"), ("title", b"Late"))
    sink = Recording()
    created = await run_upload(sink, body, content_type, piece=7)
    assert created.title == "Late"
    assert sink.store.received() == webm_head + b"x" * 100


async def test_file_that_is_not_a_video_is_refused_before_anything_is_sent(
    multipart: MultipartBuilder,
) -> None:
    body, content_type = multipart(("title", b"Text"), ("video", b"just text " * 100, "a.mp4"))
    sink = Recording()
    with pytest.raises(UnsupportedMediaType):
        await run_upload(sink, body, content_type)
    assert sink.grants.started == []
    assert sink.store.puts == []


async def test_file_past_the_limit_is_refused_before_it_is_stored(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + b"\x00" * 3000
    body, content_type = multipart(("title", b"Big"), ("video", video, "big.mp4"))
    sink = Recording()
    with pytest.raises(PayloadTooLarge):
        await run_upload(sink, body, content_type, piece=1000, max_bytes=2000)
    assert sink.store.puts == []
    assert sink.grants.finished == []


async def test_a_large_file_past_the_limit_is_refused_and_the_upload_dropped(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    video = mp4_head + b"\x00" * (2 * PART)
    body, content_type = multipart(("title", b"Big"), ("video", video, "big.mp4"))
    sink = Recording()
    with pytest.raises(PayloadTooLarge):
        await run_upload(sink, body, content_type, piece=65536, max_bytes=PART + 200_000)
    assert sink.grants.aborted == ["u1"]
    assert sink.grants.finished == []
    assert len(sink.store.received()) <= PART


async def test_upload_without_a_title_is_refused_and_dropped(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    body, content_type = multipart(("video", mp4_head * 4, "a.mp4"))
    sink = Recording()
    with pytest.raises(BadRequest, match="title"):
        await run_upload(sink, body, content_type)
    assert sink.grants.aborted == ["u1"]


async def test_upload_without_a_file_is_refused(multipart: MultipartBuilder) -> None:
    body, content_type = multipart(("title", b"Nothing"))
    sink = Recording()
    with pytest.raises(BadRequest, match="'video' file is required"):
        await run_upload(sink, body, content_type)
    assert sink.grants.started == []


async def test_empty_file_is_refused(multipart: MultipartBuilder) -> None:
    body, content_type = multipart(("title", b"Empty"), ("video", b"", "a.mp4"))
    with pytest.raises(BadRequest, match="empty"):
        await run_upload(Recording(), body, content_type)


@pytest.mark.parametrize("title", [b"x", b"y" * 101, b"\xff\xfe"])
async def test_title_out_of_bounds_is_refused_before_the_file_is_sent(
    multipart: MultipartBuilder, mp4_head: bytes, title: bytes
) -> None:
    body, content_type = multipart(("title", title), ("video", mp4_head * 4, "a.mp4"))
    sink = Recording()
    with pytest.raises(BadRequest, match="title"):
        await run_upload(sink, body, content_type)
    assert sink.grants.finished == []


async def test_second_file_part_is_refused(multipart: MultipartBuilder, mp4_head: bytes) -> None:
    body, content_type = multipart(
        ("title", b"Two"), ("video", mp4_head * 2, "a.mp4"), ("video", mp4_head * 2, "b.mp4")
    )
    sink = Recording()
    with pytest.raises(BadRequest, match="Only one"):
        await run_upload(sink, body, content_type, piece=40)
    assert sink.grants.aborted == ["u1"]
    assert sink.grants.finished == []


async def test_truncated_body_is_refused_and_nothing_stored(
    multipart: MultipartBuilder, mp4_head: bytes
) -> None:
    body, content_type = multipart(("title", b"Cut"), ("video", mp4_head * 100, "a.mp4"))
    sink = Recording()
    with pytest.raises(BadRequest, match="Incomplete"):
        await run_upload(sink, body[: len(body) // 2], content_type)
    assert sink.store.puts == []  # a small file is stored only once it has all arrived


async def test_file_name_loses_any_path(multipart: MultipartBuilder, mp4_head: bytes) -> None:
    body, content_type = multipart(("title", b"Path"), ("video", mp4_head, "C:\\Users\\a\\b.mp4"))
    sink = Recording()
    await run_upload(sink, body, content_type)
    assert sink.grants.started[0].filename == "b.mp4"


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", "text/plain; boundary=x"]
)
def test_body_that_is_not_multipart_form_data_is_refused(content_type: str | None) -> None:
    with pytest.raises(BadRequest, match="multipart"):
        multipart_boundary(content_type)
