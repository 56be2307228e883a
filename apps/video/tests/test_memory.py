"""A large video goes in and out chunk by chunk: memory does not grow with its size."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from typing import Any

from vidmesh.contracts import video as contract
from vidmesh.contracts.video import CHUNK_SIZE
from vidmesh.transport import TcpClient

MiB = 1024 * 1024
VIDEO_BYTES = 64 * MiB
GROWTH_LIMIT = 16 * MiB
"""A quarter of the video: holding it whole (or its base64) anywhere would break this."""


async def upload_generated(client: TcpClient, mp4_head: bytes) -> tuple[dict[str, Any], str]:
    """Upload VIDEO_BYTES made of one random block repeated; returns the video and its sha256."""
    block = os.urandom(CHUNK_SIZE)
    sha = hashlib.sha256()
    ticket = await client.send(contract.UPLOAD_START, {"userId": "u", "filename": "big.mp4"})
    for offset in range(0, VIDEO_BYTES, CHUNK_SIZE):
        piece = mp4_head + block[len(mp4_head) :] if offset == 0 else block
        sha.update(piece)
        payload = {
            "uploadId": ticket["uploadId"],
            "offset": offset,
            "data": base64.b64encode(piece).decode(),
        }
        await client.send(contract.UPLOAD_CHUNK, payload)
    finish = {"uploadId": ticket["uploadId"], "title": "big one"}
    return await client.send(contract.UPLOAD_FINISH, finish), sha.hexdigest()


async def read_digest(client: TcpClient, video_id: str) -> str:
    sha = hashlib.sha256()
    async for chunk in client.stream(contract.READ, {"id": video_id}):
        sha.update(base64.b64decode(chunk["data"]))
    return sha.hexdigest()


async def test_uploading_and_reading_64_mib_keeps_memory_growth_small(
    client: TcpClient, mp4: Any
) -> None:
    await client.send(contract.LIST, {})  # connections and caches warm before measuring
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        video, uploaded = await upload_generated(client, mp4(64))
        upload_peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.reset_peak()
        downloaded = await read_digest(client, video["id"])
        read_peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert video["size"] == VIDEO_BYTES
    assert video["etag"] == uploaded == downloaded
    assert upload_peak < GROWTH_LIMIT, f"upload grew memory by {upload_peak / MiB:.1f} MiB"
    assert read_peak < GROWTH_LIMIT, f"read grew memory by {read_peak / MiB:.1f} MiB"
