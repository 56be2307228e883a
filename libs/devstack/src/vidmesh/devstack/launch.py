"""How ``System`` launches one service: the environment it gets (its port and database, the
broker, the gateway's addresses and keys, the video service's object store), its ``migrate``
command, and the supervisor's spec for its ``serve`` process, with a readiness probe."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from vidmesh.devstack._process import LOOPBACK
from vidmesh.devstack.certs import Certificates
from vidmesh.devstack.object_storage import ObjectStorage
from vidmesh.devstack.probes import Probe, http_probe, tcp_health_probe
from vidmesh.devstack.services import (
    DRAIN_TIMEOUT,
    GATEWAY,
    TANSU_ANALYTICS_ENV,
    Ports,
    Secrets,
    Service,
)
from vidmesh.devstack.supervisor import ChildSpec, LineSink

LOOPBACK_ADDRESS_LIMIT = "10000/minute"
"""Per-address sign-in and sign-up limits of a local run: every client of it (browser, tests,
benchmarks) comes from 127.0.0.1, one address; the per-account limits stay as they are."""


@dataclass(frozen=True)
class Wiring:
    """What the services' environments are made of once the servers are up."""

    ports: Ports
    secrets: Secrets
    kafka_bootstrap: str
    tansu: bool
    """The broker is the embedded tansu (analytics then joins its group faster)."""
    storage: ObjectStorage
    extra_env: Mapping[str, str]
    certificates: Certificates | None = None
    """The services' certificates; None runs them with mutual TLS off."""


def service_env(service: Service, database_url: str, wiring: Wiring) -> dict[str, str]:
    """Our environment plus the service's settings; ``wiring.extra_env`` has the last word."""
    prefix = service.env_prefix
    env = dict(os.environ)
    env.setdefault(f"{prefix}DRAIN_TIMEOUT", str(DRAIN_TIMEOUT))
    env |= {
        "PYTHONUNBUFFERED": "1",  # lines reach the supervisor as they are written
        f"{prefix}HOST": LOOPBACK,
        f"{prefix}PORT": str(wiring.ports.of(service.name)),
        f"{prefix}DATABASE_URL": database_url,
    }
    if wiring.certificates is not None:
        env |= wiring.certificates.env(prefix, service.name)
    else:
        env[f"{prefix}TLS_ENABLED"] = "false"
    if service.uses_kafka:
        env[f"{prefix}KAFKA_BOOTSTRAP"] = wiring.kafka_bootstrap
    if service.name == "analytics" and wiring.tansu:
        env |= TANSU_ANALYTICS_ENV
    if service.name == "video":
        env.setdefault(f"{prefix}S3_PATH_STYLE", "true")
        gateway = wiring.ports.api_gateway  # browsers play and upload from the gateway's pages
        origins = [f"http://{LOOPBACK}:{gateway}", f"http://localhost:{gateway}"]
        env |= wiring.storage.video_env(prefix, cors_origins=origins)
    if service.name == GATEWAY:
        env |= _gateway_env(prefix, wiring)
        for limit in ("SIGNIN_LIMIT_PER_ADDRESS", "SIGNUP_LIMIT_PER_ADDRESS"):
            env.setdefault(prefix + limit, LOOPBACK_ADDRESS_LIMIT)
    return env | dict(wiring.extra_env)


def _gateway_env(prefix: str, wiring: Wiring) -> dict[str, str]:
    ports = wiring.ports
    return {
        f"{prefix}USER_ADDRESS": f"{LOOPBACK}:{ports.user}",
        f"{prefix}VIDEO_ADDRESS": f"{LOOPBACK}:{ports.video}",
        f"{prefix}ANALYTICS_ADDRESS": f"{LOOPBACK}:{ports.analytics}",
        f"{prefix}JWT_ACCESS_SECRET": wiring.secrets.jwt_access_secret,
        f"{prefix}JWT_REFRESH_SECRET": wiring.secrets.jwt_refresh_secret,
    }


async def migrate(service: Service, env: Mapping[str, str], on_line: LineSink | None) -> str | None:
    """``python -m <package> migrate`` with the service's environment, its lines passed to
    ``on_line``; None when it succeeded, else why not (the exit code and the last lines)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        service.package,
        "migrate",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
    )
    output, _ = await process.communicate()
    lines = output.decode("utf-8", "replace").splitlines()
    if on_line is not None:
        for line in lines:
            on_line(service.name, line)
    if process.returncode == 0:
        return None
    tail = "\n".join(lines[-30:])
    return f"{service.name}: migrate exited with {process.returncode}:\n{tail}"


def child_spec(
    service: Service, env: Mapping[str, str], port: int, certificates: Certificates | None = None
) -> ChildSpec:
    """``python -m <package> serve``, ready when the gateway's ``/healthz`` answers 200 or a
    TCP service answers the health pattern (with TLS, to its own certificate, which it admits,
    as its ``health`` command does)."""
    probe: Probe
    if service.name == GATEWAY:
        probe = http_probe(f"http://{LOOPBACK}:{port}/healthz")
    elif certificates is not None:
        context = certificates.client_context(service.name)
        probe = tcp_health_probe(LOOPBACK, port, ssl_context=context, server_hostname=service.name)
    else:
        probe = tcp_health_probe(LOOPBACK, port)
    argv = (sys.executable, "-m", service.package, "serve")
    return ChildSpec(service.name, argv, env=env, probe=probe)
