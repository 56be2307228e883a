"""One keep-alive HTTP/1.1 connection of the platform load generator: a few lines of asyncio
over httptools (the C parser uvicorn uses), so the load client costs little CPU beside the
system it measures. Every response is read to its end (its length checked by the parser)."""

from __future__ import annotations

import asyncio

import httptools


class HttpError(Exception):
    """The connection failed or the response was malformed."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; bodies are counted, not kept."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._done: asyncio.Future[int] | None = None
        self.body_bytes = 0

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(cls, host, port)
        return connection

    async def request(self, head: bytes, body: bytes = b"") -> int:
        """Send a request (``head`` ends with the blank line); the status once the whole
        response has arrived."""
        if self._transport is None or self._transport.is_closing():
            raise HttpError("the connection is closed")
        self._done = asyncio.get_running_loop().create_future()
        self.body_bytes = 0
        self._transport.write(head)
        if body:
            self._transport.write(body)
        return await self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol and the parser's callbacks ----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HttpError(f"malformed response: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(HttpError(f"connection lost: {exc}"))

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(self._parser.get_status_code())
        if not self._parser.should_keep_alive():
            self.close()

    def _fail(self, error: HttpError) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)
        self.close()
