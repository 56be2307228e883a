"""What the platform is made of: its four services (package, env prefix, database), the ports
they listen on, and the secrets ``vidmesh up`` makes once and keeps (``secrets.json``): database
passwords, JWT keys and the embedded object store's S3 keys."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from pydantic import BaseModel
from vidmesh.devstack._process import free_port
from vidmesh.devstack.objectstore import new_access_key_id, new_secret_access_key


@dataclass(frozen=True)
class Service:
    """One app: its name in ``vidmesh up``, package, env prefix and database (= role) name."""

    name: str
    package: str
    env_prefix: str
    database: str
    uses_kafka: bool


GATEWAY: Final = "api-gateway"
SERVICES: Final = (
    Service("user", "vidmesh_user", "VIDMESH_USER_", "user-service", uses_kafka=False),
    Service("video", "vidmesh_video", "VIDMESH_VIDEO_", "video-service", uses_kafka=True),
    Service(
        "analytics", "vidmesh_analytics", "VIDMESH_ANALYTICS_", "analytics-service", uses_kafka=True
    ),
    Service(GATEWAY, "vidmesh_api_gateway", "VIDMESH_API_GATEWAY_", "api-gateway", uses_kafka=True),
)
"""In start order; the gateway, last, waits for the others to be ready."""

# With the embedded tansu: a group join costs one 1 s sleep, not five (docs/devstack.md).
TANSU_ANALYTICS_ENV: Final = {
    "VIDMESH_ANALYTICS_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "VIDMESH_ANALYTICS_KAFKA_HEARTBEAT_INTERVAL_MS": "250",
}
DRAIN_TIMEOUT: Final = 10.0
"""Seconds a stopping service may drain (its ``DRAIN_TIMEOUT``); SIGKILL follows 5 s later."""


@dataclass(frozen=True)
class Ports:
    """Where each service listens."""

    api_gateway: int = 3000
    user: int = 3001
    video: int = 3002
    analytics: int = 3003

    @classmethod
    def from_base(cls, base: int) -> Ports:
        """The gateway on ``base``, then user, video and analytics on the next three."""
        return cls(api_gateway=base, user=base + 1, video=base + 2, analytics=base + 3)

    @classmethod
    def free(cls) -> Ports:
        """Four ports nothing listens on right now (for tests)."""
        return cls(**{f.name: free_port() for f in fields(cls)})

    def of(self, service: str) -> int:
        port: int = getattr(self, service.replace("-", "_"))
        return port


class Secrets(BaseModel):
    """``secrets.json``: each database role's password, the gateway's two JWT keys and the
    embedded object store's S3 keys."""

    passwords: dict[str, str] = {}
    jwt_access_secret: str = ""
    jwt_refresh_secret: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""


def load_secrets(path: Path, roles: list[str]) -> Secrets:
    """Read ``path``, fill in what is missing (new random values) and write it back (mode 600)."""
    stored = Secrets.model_validate_json(path.read_text()) if path.exists() else Secrets()
    filled = stored.model_copy(deep=True)
    for role in roles:
        filled.passwords.setdefault(role, secrets.token_urlsafe(24))
    filled.jwt_access_secret = filled.jwt_access_secret or secrets.token_urlsafe(48)
    filled.jwt_refresh_secret = filled.jwt_refresh_secret or secrets.token_urlsafe(48)
    filled.s3_access_key_id = filled.s3_access_key_id or new_access_key_id()
    filled.s3_secret_access_key = filled.s3_secret_access_key or new_secret_access_key()
    if filled != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(filled.model_dump_json(indent=2))
        temporary.replace(path)
    return filled
