"""AsgiTransport: an ASGI app beside TCP in one Microservice, over real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from vidmesh.transport import Microservice, Router, ServiceState, TcpClient, TcpServer
from vidmesh.transport.asgi import AsgiTransport

Scope = dict[str, Any]


def make_app(release: asyncio.Event, started: asyncio.Event, lifespan_log: list[str]) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                lifespan_log.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["path"] == "/slow":
            started.set()
            await release.wait()
        body = b"hello from " + scope["path"].encode()
        length = str(len(body)).encode()
        headers = [(b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def http_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response


def make_router() -> Router:
    router = Router()

    @router.message("ping")
    def ping() -> str:
        return "pong"

    return router


async def test_one_service_answers_tcp_and_http_and_runs_the_app_lifespan() -> None:
    log: list[str] = []
    asgi = AsgiTransport(make_app(asyncio.Event(), asyncio.Event(), log), port=0)
    tcp = TcpServer("127.0.0.1", 0)
    service = Microservice("hybrid", make_router(), transports=[tcp, asgi])
    async with service:
        assert service.state is ServiceState.READY
        assert (await http_get(asgi.port, "/hi")).endswith(b"hello from /hi")
        async with TcpClient("127.0.0.1", tcp.port) as client:
            assert await client.send("ping") == "pong"
        assert log == ["lifespan.startup"]
    assert log == ["lifespan.startup", "lifespan.shutdown"]


async def test_stopping_lets_an_http_request_in_flight_finish() -> None:
    release, started = asyncio.Event(), asyncio.Event()
    asgi = AsgiTransport(make_app(release, started, []), port=0)
    service = Microservice("hybrid", make_router(), transports=[asgi])
    await service.start()
    request = asyncio.create_task(http_get(asgi.port, "/slow"))
    await started.wait()
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done(), "stop must wait for the request in flight"
    release.set()
    assert (await request).endswith(b"hello from /slow")
    await stopping
    assert service.state is ServiceState.STOPPED
