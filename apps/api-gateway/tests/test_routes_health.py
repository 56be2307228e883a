"""Probes, docs and the error shape of routes that do not exist, over real HTTP."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from vidmesh_api_gateway.__main__ import health
from vidmesh_api_gateway.settings import Settings

# random-looking keys: placeholders and repeated characters are refused (vidmesh.kit.secrets)
ACCESS_SECRET = "k3Yq-access-9fT2mZpW7xLr0aBvN4cHdE6s"
REFRESH_SECRET = "R8uJ-refresh-2wQe5tYk1oPlZ3xMnB7vC9g"


async def test_healthz_answers_while_the_process_serves(http: httpx.AsyncClient) -> None:
    answer = await http.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


async def test_readyz_is_the_gateways_own_database_only(http: httpx.AsyncClient) -> None:
    # The services and the broker are down here: the gateway itself can still serve.
    answer = await http.get("/readyz")
    assert (answer.status_code, answer.json()) == (
        200,
        {"status": "ok", "checks": {"database": True}},
    )


async def test_dependencies_names_each_one_that_is_down(http: httpx.AsyncClient) -> None:
    answer = await http.get("/health/dependencies")
    assert answer.status_code == 503
    body = answer.json()
    assert body["statusCode"] == 503
    assert body["error"] == "Service Unavailable"
    assert body["checks"] == {
        "database": True,
        "user": False,
        "video": False,
        "analytics": False,
        "broker": False,
    }
    assert body["message"] == "Unavailable: user, video, analytics, broker"


async def test_unknown_route_is_404_in_the_error_shape(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/nothing-here")
    assert answer.status_code == 404
    assert answer.json() == {
        "statusCode": 404,
        "message": "Cannot GET /api/nothing-here",
        "error": "Not Found",
    }


async def test_wrong_method_is_405_in_the_error_shape(http: httpx.AsyncClient) -> None:
    answer = await http.delete("/api/auth/signup")
    assert answer.status_code == 405
    assert answer.json()["statusCode"] == 405
    assert answer.json()["error"] == "Method Not Allowed"


async def test_docs_are_served(http: httpx.AsyncClient) -> None:
    answer = await http.get("/docs")
    assert answer.status_code == 200
    assert "swagger" in answer.text.lower()


async def test_openapi_documents_bearer_schemes_and_the_multipart_upload(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert spec["info"]["title"] == "vidmesh API"
    schemes = spec["components"]["securitySchemes"]
    assert schemes["accessToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token",
    }
    upload = spec["paths"]["/api/videos"]["post"]
    assert upload["security"] == [{"accessToken": []}]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["video", "title"]
    assert form["properties"]["video"]["format"] == "binary"
    assert spec["paths"]["/api/auth/refresh"]["post"]["security"] == [{"refreshToken": []}]
    assert "security" not in spec["paths"]["/api/videos"]["get"]


async def test_health_command_is_true_while_the_gateway_answers(
    gateway_url: str, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    set_env(monkeypatch, database_url, port=int(gateway_url.rsplit(":", 1)[1]))
    assert await asyncio.to_thread(health, Settings())  # blocking: off the gateway's loop


def test_health_command_is_false_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    set_env(monkeypatch, database_url, port=port)
    assert not health(Settings())


def set_env(monkeypatch: pytest.MonkeyPatch, database_url: str, *, port: int) -> None:
    monkeypatch.setenv("VIDMESH_API_GATEWAY_PORT", str(port))
    monkeypatch.setenv("VIDMESH_API_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("VIDMESH_API_GATEWAY_JWT_ACCESS_SECRET", ACCESS_SECRET)
    monkeypatch.setenv("VIDMESH_API_GATEWAY_JWT_REFRESH_SECRET", REFRESH_SECRET)
    monkeypatch.setenv("VIDMESH_API_GATEWAY_TLS_ENABLED", "false")
