"""The tutorial's Buffer patterns switched off (``buffer_patterns=False``, the prod overlay)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from vidmesh.contracts import video as contract
from vidmesh.transport import RemoteError

KiB = 1024


async def test_with_buffer_patterns_off_upload_and_download_answer_that_they_are_off(
    serve: Any,
) -> None:
    async with serve(buffer_patterns=False) as client:
        upload = {"userId": str(uuid.uuid4()), "title": "t", "buffer": {"data": [0, 1]}}
        for pattern, data in ((contract.UPLOAD, upload), (contract.DOWNLOAD, {"id": "x"})):
            with pytest.raises(RemoteError) as caught:
                await client.send(pattern, data, timeout=5.0)
            assert caught.value.status_code == 403
            assert "switched off" in caught.value.message
        assert await client.send(contract.LIST, {"page": 1, "size": 1}, timeout=5.0)


async def test_with_buffer_patterns_off_the_port_takes_only_small_frames(serve: Any) -> None:
    async with serve(buffer_patterns=False) as client:
        await client.send(contract.LIST, {"page": 1, "size": 1}, timeout=5.0)
        host, port = client.host, client.port
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"%d#{" % (2 * KiB * KiB))  # the tutorial's upload of a 512 KiB video
            assert await asyncio.wait_for(reader.read(), 5.0) == b""
        finally:
            writer.close()
