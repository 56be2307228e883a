"""CI runs, outside any container, the commands each image runs: deploy/entrypoint.sh (the file
the Dockerfiles copy) with the environment its Dockerfile sets, against real PostgreSQL, Kafka
and, for the video service, an S3 store (the embedded ones, or those of the VIDMESH_*
variables). Each service migrates twice (the second run changes nothing), serves, answers its
health check (the image's HEALTHCHECK command), and stops cleanly on SIGTERM.

One difference from a container: the service binds 127.0.0.1 on a free port instead of
0.0.0.0 on its fixed one, so runs on one machine do not collide.

The first tests check the script's own logic with a stand-in service module that only records
the commands it is given.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from vidmesh.devstack.certs import Certificates, ensure_certificates
from vidmesh.devstack.databases import create_role_and_database, drop_database
from vidmesh.devstack.pytest_plugin import unique_name
from vidmesh.devstack.s3 import ObjectStore

from tests.deploy.services import ENTRYPOINT, Service, each_service, image_env

VENV_BIN = str(Path(sys.executable).parent)
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0


def base_env() -> dict[str, str]:
    """This machine's environment without VIDMESH_* and with the venv's ``python`` first on
    PATH, as the image has /app/.venv/bin first."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIDMESH_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def entrypoint(
    *args: str, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


# -- the script's logic, with a stand-in service --------------------------------------------------

STAND_IN = """
import json, os, sys
command = sys.argv[1]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps([command, os.getpid()]) + "\\n")
sys.exit(int(os.environ.get("STAND_IN_EXIT_" + command.upper(), "0")))
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    """The environment of an image whose service is ``stand_in``, which logs each command."""
    package = tmp_path / "stand_in"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(STAND_IN)
    return base_env() | {
        "PYTHONPATH": str(tmp_path),
        "VIDMESH_SERVICE_MODULE": "stand_in",
        "STAND_IN_LOG": str(tmp_path / "commands.log"),
    }


def commands(env: dict[str, str]) -> list[tuple[str, int]]:
    log = Path(env["STAND_IN_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return [tuple(json.loads(line)) for line in lines]  # type: ignore[misc]


@pytest.mark.parametrize("args", [[], ["serve"]], ids=["no-arguments", "serve"])
def test_serve_migrates_then_becomes_the_service_process(
    stand_in: dict[str, str], args: list[str]
) -> None:
    process = subprocess.Popen([str(ENTRYPOINT), *args], env=stand_in)
    assert process.wait(timeout=30) == 0
    (migrate, migrate_pid), (serve, serve_pid) = commands(stand_in)
    assert (migrate, serve) == ("migrate", "serve")
    # exec: the service is the process Docker or the kubelet signals, not a child of a shell
    assert serve_pid == process.pid
    assert migrate_pid != process.pid


def test_serve_skips_the_migration_when_told(stand_in: dict[str, str]) -> None:
    result = entrypoint("serve", env=stand_in | {"VIDMESH_SKIP_MIGRATE": "1"})
    assert result.returncode == 0
    assert [command for command, _ in commands(stand_in)] == ["serve"]


def test_failed_migration_stops_the_container_before_serving(stand_in: dict[str, str]) -> None:
    result = entrypoint("serve", env=stand_in | {"STAND_IN_EXIT_MIGRATE": "3"})
    assert result.returncode == 3
    assert [command for command, _ in commands(stand_in)] == ["migrate"]


@pytest.mark.parametrize("command", ["migrate", "health"])
def test_migrate_and_health_run_alone_with_their_exit_code(
    stand_in: dict[str, str], command: str
) -> None:
    assert entrypoint(command, env=stand_in).returncode == 0
    failing = entrypoint(command, env=stand_in | {f"STAND_IN_EXIT_{command.upper()}": "1"})
    assert failing.returncode == 1
    assert [name for name, _ in commands(stand_in)] == [command, command]


def test_any_other_command_runs_as_given(stand_in: dict[str, str]) -> None:
    result = entrypoint("python", "-c", "print('as given')", env=stand_in)
    assert result.stdout == "as given\n"
    assert commands(stand_in) == []


def test_entrypoint_refuses_to_guess_the_service(stand_in: dict[str, str]) -> None:
    del stand_in["VIDMESH_SERVICE_MODULE"]
    result = entrypoint("serve", env=stand_in)
    assert result.returncode != 0
    assert "VIDMESH_SERVICE_MODULE" in result.stderr


# -- the real services -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def service_url(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A role and database of the service's own, made the way ``vidmesh up`` makes them."""
    name = unique_name(request, "deploy")
    url = asyncio.run(create_role_and_database(postgres_url, name, secrets.token_hex(16)))
    try:
        yield url
    finally:
        asyncio.run(drop_database(postgres_url, name, role=True))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Every service's identity, as `vidmesh certs` makes it for compose."""
    names = ["user", "video", "analytics", "api-gateway"]
    return ensure_certificates(tmp_path_factory.mktemp("tls"), names)


def container_env(
    service: Service,
    *,
    database_url: str,
    kafka_bootstrap: str,
    group: str,
    certificates: Certificates,
    store: tuple[ObjectStore, str] | None = None,
) -> dict[str, str]:
    """The image's ENV (PATH aside), then what compose or Kubernetes would add: its certificate
    (mutual TLS on, so ``health`` presents it), and ``store``: the video service's S3 store and
    bucket."""
    env = base_env() | {k: v for k, v in image_env(service.dockerfile).items() if k != "PATH"}
    env |= {
        service.env("host"): "127.0.0.1",
        service.env("port"): str(free_port()),
        service.env("database_url"): database_url,
        service.env("kafka_bootstrap"): kafka_bootstrap,
        service.env("log_level"): "warning",
        service.env("tls_cert"): str(certificates.cert(service.name)),
        service.env("tls_key"): str(certificates.key(service.name)),
        service.env("tls_ca"): str(certificates.ca),
    }
    if service.name == "api-gateway":
        env[service.env("jwt_access_secret")] = secrets.token_hex(32)
        env[service.env("jwt_refresh_secret")] = secrets.token_hex(32)
    if service.name == "analytics":
        env[service.env("kafka_group_id")] = group
    if store is not None:
        env |= s3_env(service, *store)
    return env


def s3_env(service: Service, store: ObjectStore, bucket: str) -> dict[str, str]:
    return {
        service.env("s3_endpoint"): store.endpoint,
        service.env("s3_region"): store.region,
        service.env("s3_bucket"): bucket,
        service.env("s3_access_key_id"): store.access_key_id,
        service.env("s3_secret_access_key"): store.secret_access_key,
    }


async def schema_revision(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await conn.close()


def wait_until_healthy(env: dict[str, str], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        if entrypoint("health", env=env, timeout=30).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"not healthy after {READY_TIMEOUT} s:\n{log.read_text()}")


@pytest.mark.timeout(300)  # four Python start-ups and two migrations on a busy 2-core machine
@each_service()
def test_image_commands_migrate_twice_serve_healthy_and_stop_on_sigterm(
    service: Service,
    service_url: str,
    kafka_bootstrap: str,
    unique_group: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    certificates: Certificates,
) -> None:
    store = None
    if service.reaches_store and service.name == "video":  # the gateway holds no store keys
        store = (request.getfixturevalue("object_store"), request.getfixturevalue("unique_bucket"))
    env = container_env(
        service,
        database_url=service_url,
        kafka_bootstrap=kafka_bootstrap,
        group=unique_group,
        certificates=certificates,
        store=store,
    )
    revisions = []
    for _ in range(2):
        migrated = entrypoint("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        revisions.append(asyncio.run(schema_revision(service_url)))
    assert revisions[0] == revisions[1] != "None"

    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=output, stderr=output)
    try:
        wait_until_healthy(env, process, log)
        assert psutil.Process(process.pid).cmdline()[-3:] == ["-m", service.package, "serve"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert entrypoint("health", env=env, timeout=30).returncode != 0
