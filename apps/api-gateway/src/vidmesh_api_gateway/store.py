"""The object store as the gateway sees it: presigned URLs the video service granted, fetched
and PUT with aiohttp. The gateway holds no store credentials.

aiohttp because it streams both ways with bounded buffers and its C parser costs a fraction
of httpx's CPU per megabyte (docs/benchmarks.md). A response body is read
:data:`READ_CHUNK` at a time and aiohttp stops reading the socket when about twice that is
buffered, so a client that does not read holds a couple of hundred KiB here (the rest waits
in the kernel and in the store).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import structlog
from yarl import URL

from vidmesh_api_gateway.errors import BadGateway, StoreUnavailable

logger = structlog.get_logger("vidmesh_api_gateway.store")

READ_CHUNK: Final = 32 * 1024
"""Bytes per read of a download (and aiohttp's read buffer)."""


class StoreClient:
    """One aiohttp session (its connection pool) for every transfer; opened on first use."""

    def __init__(self, *, connections: int, timeout: float) -> None:
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=60),
                timeout=self._timeout,
                read_bufsize=READ_CHUNK,
                auto_decompress=False,
                # A presigned URL is signed as written: never re-quote it.
                requote_redirect_url=False,
            )
        return self._session

    async def read(self, url: str, *, start: int, end: int, size: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of an object of ``size`` bytes, as they arrive."""
        headers = {} if (start, end) == (0, size) else {"Range": f"bytes={start}-{end - 1}"}
        try:
            async with self._client().get(URL(url, encoded=True), headers=headers) as response:
                if response.status not in (200, 206):
                    raise _refused("read", response)
                async for piece in response.content.iter_chunked(READ_CHUNK):
                    yield piece
        except aiohttp.ClientError as error:
            raise _unavailable("read", error) from None
        except TimeoutError as error:
            raise _unavailable("read", error) from None

    async def put(self, url: str, data: bytes | bytearray | memoryview) -> None:
        """PUT ``data`` (a whole object, or one part of a multipart upload)."""
        try:
            async with self._client().put(URL(url, encoded=True), data=data) as response:
                if response.status != 200:
                    raise _refused("write", response)
                await response.read()
        except aiohttp.ClientError as error:
            raise _unavailable("write", error) from None
        except TimeoutError as error:
            raise _unavailable("write", error) from None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _unavailable(doing: str, error: BaseException) -> StoreUnavailable:
    logger.warning("store_unreachable", doing=doing, error=repr(error))
    return StoreUnavailable(f"The video store is unavailable (could not {doing})")


def _refused(doing: str, response: aiohttp.ClientResponse) -> BadGateway | StoreUnavailable:
    logger.warning("store_refused", doing=doing, status=response.status)
    if response.status >= 500:
        return StoreUnavailable(f"The video store is unavailable (could not {doing})")
    # A grant the store refuses (expired, bad signature, no such object) is our fault.
    return BadGateway(f"The video store refused to {doing} ({response.status})")
