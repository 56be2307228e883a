"""What the deploy files must agree on, per service, and the helpers the deploy tests share:
the repository's paths, a Dockerfile reader, and a service's settings built from an environment
the way the service builds them (``Settings()`` from the environment, nothing else)."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
INIT_SCRIPT = DEPLOY / "postgres" / "init-databases.sh"


@dataclass(frozen=True)
class Service:
    name: str
    """Folder under apps/, compose service, Kubernetes Deployment and Service."""
    package: str
    prefix: str
    """Env prefix of its settings."""
    database: str
    """Role and database (the tutorial's names), made by the init script."""
    password_var: str
    """The init script's variable holding that role's password."""
    uses_kafka: bool
    callers: tuple[str, ...]
    """The services that call it (its NetworkPolicy admits only these)."""
    reaches_store: bool = False
    """It talks to the object store: video with its keys, the gateway through signed URLs."""

    @property
    def dockerfile(self) -> Path:
        return REPO / "apps" / self.name / "Dockerfile"

    def env(self, field: str) -> str:
        return f"{self.prefix}{field.upper()}"


SERVICES = (
    Service(
        "user",
        "vidmesh_user",
        "VIDMESH_USER_",
        "user-service",
        "USER_DB_PASSWORD",
        uses_kafka=False,
        callers=("api-gateway",),
    ),
    Service(
        "video",
        "vidmesh_video",
        "VIDMESH_VIDEO_",
        "video-service",
        "VIDEO_DB_PASSWORD",
        uses_kafka=True,
        callers=("api-gateway",),
        reaches_store=True,
    ),
    Service(
        "analytics",
        "vidmesh_analytics",
        "VIDMESH_ANALYTICS_",
        "analytics-service",
        "ANALYTICS_DB_PASSWORD",
        uses_kafka=True,
        callers=("api-gateway",),
    ),
    Service(
        "api-gateway",
        "vidmesh_api_gateway",
        "VIDMESH_API_GATEWAY_",
        "api-gateway",
        "API_GATEWAY_DB_PASSWORD",
        uses_kafka=True,
        callers=(),
        reaches_store=True,
    ),
)
BY_NAME = {service.name: service for service in SERVICES}
GATEWAY_ADDRESSES = {
    "user": "user_address",
    "video": "video_address",
    "analytics": "analytics_address",
}
"""The gateway's settings that name each service it calls."""
STORE = "objectstore"
"""The object store's compose service, Kubernetes StatefulSet and Service (dev overlay)."""


def each_service() -> Any:
    """``@each_service()``: a test per service, named after it."""
    return pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])


# -- Dockerfiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int
    """0 for the first FROM's stage, then 1, 2..."""


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stage = -1
    instructions = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), max(stage, 0)))
    return instructions


def runtime_stage(path: Path) -> list[Instruction]:
    """The instructions of the last stage: what the image runs with."""
    instructions = dockerfile_instructions(path)
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


def image_env(path: Path) -> dict[str, str]:
    """The ``ENV key=value ...`` of the runtime stage (``$PATH`` references left as they are)."""
    env: dict[str, str] = {}
    for instruction in runtime_stage(path):
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def runtime_value(path: Path, keyword: str) -> str:
    """The arguments of the runtime stage's only ``keyword`` instruction."""
    found = [i.arguments for i in runtime_stage(path) if i.keyword == keyword]
    assert len(found) == 1, f"{path}: expected one {keyword} in the runtime stage, got {found}"
    return found[0]


# -- settings ------------------------------------------------------------------------------------


def settings_class(service: Service) -> type[Any]:
    module = importlib.import_module(f"{service.package}.settings")
    return module.Settings


def load_settings(service: Service, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``Settings()`` as the service would build it with exactly ``env`` (as a container has it:
    nothing else of this machine's VIDMESH_* variables)."""
    for key in list(os.environ):
        if key.startswith("VIDMESH_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return settings_class(service)()


def required_variables(service: Service) -> set[str]:
    """The variables a service refuses to start without (its settings with no default)."""
    fields = settings_class(service).model_fields
    return {service.env(name) for name, field in fields.items() if field.is_required()}


def weed_flags(args: list[str]) -> dict[str, str]:
    """``-name=value`` arguments of a ``weed`` command line, by name (``-s3`` -> ``"true"``)."""
    flags = {}
    for arg in args:
        if arg.startswith("-"):
            name, _, value = arg.lstrip("-").partition("=")
            flags[name] = value or "true"
    return flags


# -- addresses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseUrl:
    host: str
    port: int
    user: str
    password: str
    database: str


def parse_database_url(url: str) -> DatabaseUrl:
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme in ("postgresql", "postgres"), url
    return DatabaseUrl(
        host=parts.hostname or "",
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        database=urllib.parse.unquote(parts.path.lstrip("/")),
    )


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` as a pair; each of a comma-separated list must be checked on its own."""
    match = re.fullmatch(r"\[?([^\]]+?)\]?:(\d+)", address.strip())
    assert match, f"not host:port: {address!r}"
    return match.group(1), int(match.group(2))
