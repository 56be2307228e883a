"""The four Dockerfiles and the root .dockerignore, checked without a Docker engine: hadolint,
and what each image must agree on with its service (port, health command, entrypoint, the
workspace packages it installs) and with the build context."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.services import (
    ENTRYPOINT,
    REPO,
    Service,
    dockerfile_instructions,
    each_service,
    image_env,
    runtime_value,
    settings_class,
)

VENV_BIN = Path(sys.executable).parent
NON_ROOT_USER = "10001:10001"
"""The uid:gid every image runs as; the Kubernetes securityContext says the same."""


def copies(service: Service) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of each COPY from the build context (not ``--from``)."""
    found = []
    for instruction in dockerfile_instructions(service.dockerfile):
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        found.append((paths[:-1], paths[-1]))
    return found


def build_runs(service: Service) -> list[str]:
    return [i.arguments for i in dockerfile_instructions(service.dockerfile) if i.keyword == "RUN"]


def workspace_closure(dist: str) -> set[str]:
    """The folders (``libs/kit``...) of ``dist`` and every workspace package it depends on."""
    members = {}
    for pyproject in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("apps/*/pyproject.toml")]:
        project = tomllib.loads(pyproject.read_text())["project"]
        members[project["name"]] = (pyproject.parent, project.get("dependencies", []))
    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in members[name][1]:
            dependency = re.match(r"[A-Za-z0-9_.-]+", requirement)
            if dependency and dependency.group(0) in members:
                todo.append(dependency.group(0))
    return {members[name][0].relative_to(REPO).as_posix() for name in seen}


def dist_name(service: Service) -> str:
    pyproject = service.dockerfile.parent / "pyproject.toml"
    return str(tomllib.loads(pyproject.read_text())["project"]["name"])


@each_service()
def test_dockerfile_passes_hadolint(service: Service) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", str(service.dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@each_service()
def test_image_runs_the_shared_entrypoint_as_a_non_root_user(service: Service) -> None:
    assert runtime_value(service.dockerfile, "USER") == NON_ROOT_USER
    assert runtime_value(service.dockerfile, "ENTRYPOINT") == '["vidmesh-entrypoint"]'
    assert runtime_value(service.dockerfile, "CMD") == '["serve"]'
    assert (["deploy/entrypoint.sh"], "/usr/local/bin/vidmesh-entrypoint") in copies(service)
    assert image_env(service.dockerfile)["VIDMESH_SERVICE_MODULE"] == service.package


@each_service()
def test_image_listens_on_all_interfaces_at_the_service_port(service: Service) -> None:
    env = image_env(service.dockerfile)
    port = settings_class(service).model_fields["port"].default
    assert runtime_value(service.dockerfile, "EXPOSE") == str(port)
    assert env[service.env("port")] == str(port)
    assert env[service.env("host")] == "0.0.0.0"


@each_service()
def test_healthcheck_runs_the_service_health_command(service: Service) -> None:
    healthcheck = runtime_value(service.dockerfile, "HEALTHCHECK")
    assert healthcheck.endswith(f'CMD ["python", "-m", "{service.package}", "health"]')


@each_service()
def test_dependencies_are_installed_in_a_layer_before_the_code(service: Service) -> None:
    runs = build_runs(service)
    first, second = (run for run in runs if "uv sync" in run)
    assert "uv lock" in first
    assert "--no-install-workspace" in first
    assert f"--package {dist_name(service)}" in first
    assert f"--locked --no-dev --no-editable --package {dist_name(service)}" in second
    sources = [source for sources, _ in copies(service) for source in sources]
    before_code = sources[: next(i for i, s in enumerate(sources) if s.endswith("/src"))]
    # uv lock needs every workspace member's pyproject, and nothing else, in the first layer
    members = {p.relative_to(REPO).as_posix() for p in REPO.glob("*/*/pyproject.toml")}
    assert set(before_code) == {"pyproject.toml", *members}


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@each_service()
def test_every_base_image_is_pinned_by_digest(service: Service) -> None:
    instructions = dockerfile_instructions(service.dockerfile)
    args = {
        name: default
        for name, _, default in (
            i.arguments.partition("=") for i in instructions if i.keyword == "ARG"
        )
    }
    stages: set[str] = set()
    for instruction in (i for i in instructions if i.keyword == "FROM"):
        image, *alias = instruction.arguments.split(" AS ")
        if image.startswith("${") and image.endswith("}"):
            image = args[image[2:-1]]
        assert image in stages or DIGEST.search(image), f"{instruction.arguments}: no digest"
        stages.update(name.strip() for name in alias)
    # No `# syntax=` line: it would pull a Dockerfile frontend image by a movable tag.
    assert not service.dockerfile.read_text().startswith("# syntax=")


@each_service()
def test_image_holds_exactly_the_workspace_packages_its_service_needs(service: Service) -> None:
    code = {
        source.removesuffix("/src")
        for sources, _ in copies(service)
        for source in sources
        if source.endswith("/src")
    }
    assert code == workspace_closure(dist_name(service))


# -- .dockerignore --------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``(excludes, regex)`` per line, in order, with Docker's syntax: ``**`` any number of
    folders, ``*`` and ``?`` within one name, ``!`` an exception, the last match wins."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        line = line.lstrip("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", line):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token)
            )
        patterns.append((excludes, re.compile(regex)))
    return patterns


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the root): a pattern matching the path or
    any folder above it applies."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for excludes, regex in dockerignore_patterns():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = excludes
    return not excluded


@each_service()
def test_build_context_holds_every_file_the_dockerfile_copies(service: Service) -> None:
    for sources, _ in copies(service):
        for source in sources:
            path = REPO / source
            assert path.exists(), f"{service.dockerfile} copies {source}, which does not exist"
            files = [path] if path.is_file() else list(path.rglob("*.py"))
            missing = [f for f in files if not in_build_context(f.relative_to(REPO).as_posix())]
            assert files
            assert not missing, f".dockerignore drops {missing}"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "uv.lock",
        "docs/deploy.md",
        "apps/user/tests/test_handlers.py",
        "libs/kit/tests/conftest.py",
        "libs/kit/src/vidmesh/kit/__pycache__/db.cpython-311.pyc",
        ".vidmesh/postgres/PG_VERSION",
        "deploy/.env",
    ],
)
def test_build_context_leaves_out_what_no_image_needs(path: str) -> None:
    assert not in_build_context(path)


def test_entrypoint_is_an_executable_posix_shell_script() -> None:
    assert ENTRYPOINT.stat().st_mode & 0o111
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    assert subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=False).returncode == 0
