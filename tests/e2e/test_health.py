"""The gateway's surface outside the API: liveness, its own readiness, the state of everything
behind it, the OpenAPI docs, and unknown routes in the one error shape."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest

from tests.e2e.fixtures_api import assert_error


def test_healthz_says_the_gateway_is_alive(gateway: httpx.Client) -> None:
    response = gateway.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_gateways_own_database(gateway: httpx.Client) -> None:
    response = gateway.get("/readyz")
    assert response.status_code == HTTPStatus.OK, response.text
    assert response.json() == {"status": "ok", "checks": {"database": True}}


def test_dependencies_checks_the_database_the_services_and_the_broker(
    gateway: httpx.Client,
) -> None:
    response = gateway.get("/health/dependencies")
    assert response.status_code == HTTPStatus.OK, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": True,
            "user": True,
            "video": True,
            "analytics": True,
            "broker": True,
        },
    }


def test_docs_are_served(gateway: httpx.Client) -> None:
    response = gateway.get("/docs")
    assert response.status_code == HTTPStatus.OK
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()


def test_openapi_describes_every_route(gateway: httpx.Client) -> None:
    response = gateway.get("/openapi.json")
    assert response.status_code == HTTPStatus.OK
    paths = response.json()["paths"]
    assert {
        "/api/auth/signup",
        "/api/auth/signin",
        "/api/auth/refresh",
        "/api/auth/signout",
        "/api/videos",
        "/api/videos/{video_id}",
        "/api/videos/{video_id}/download",
        "/api/analytics/top",
        "/healthz",
        "/readyz",
        "/health/dependencies",
    } <= set(paths)
    upload = paths["/api/videos"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/videos/x/y/z"])
def test_an_unknown_route_is_not_found(gateway: httpx.Client, path: str) -> None:
    message = assert_error(gateway.get(path), HTTPStatus.NOT_FOUND)
    assert message == f"Cannot GET {path}"


def test_a_wrong_method_is_not_allowed(gateway: httpx.Client) -> None:
    assert_error(gateway.delete("/api/videos"), HTTPStatus.METHOD_NOT_ALLOWED)
