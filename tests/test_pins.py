"""Reproducible installs: every package the workspace installs is pinned, exactly, in the
committed pyproject.toml, and that file names no package index (vidmesh.devstack.pins)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from vidmesh.devstack.pins import read_pins, with_pins

ROOT = Path(__file__).resolve().parents[1]


def locked_packages() -> set[tuple[str, str]]:
    """(name, version) of each third-party package in the lock uv made from the pyproject files
    (every ``uv run``/``uv sync`` makes or checks it; it is not committed)."""
    lock_path = ROOT / "uv.lock"
    if not lock_path.exists():
        pytest.fail("no uv.lock: run the tests with `uv run pytest`, which makes it")
    lock = tomllib.loads(lock_path.read_text())
    return {
        (package["name"], package["version"])
        for package in lock["package"]
        if "registry" in package.get("source", {})
    }


def pinned() -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for line in read_pins(ROOT / "pyproject.toml"):
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{line}: a pin is an exact version"
        versions.setdefault(requirement.name, set()).add(specifier.version)
    return versions


def test_every_installed_package_is_pinned_to_the_version_installed() -> None:
    pins = pinned()
    unpinned = sorted(
        f"{name}=={version}"
        for name, version in locked_packages()
        if version not in pins.get(name, set())
    )
    assert not unpinned, f"not pinned (run `uv run vidmesh pin`): {unpinned}"


def test_pins_name_no_package_index() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert "://" not in text.split("[tool.uv]", 1)[1].split("[tool.uv.workspace]", 1)[0]
    for line in read_pins(ROOT / "pyproject.toml"):
        requirement = Requirement(line)
        assert requirement.url is None, line


def test_with_pins_replaces_the_list_and_keeps_the_rest() -> None:
    original = '[project]\nname = "x"\n\n[tool.uv]\npackage = false\n\n[tool.other]\na = 1\n'
    first = with_pins(original, ["a==1", "b==2 ; sys_platform == 'win32'"])
    second = with_pins(first, ["c==3"])
    data = tomllib.loads(second)
    assert data["tool"]["uv"] == {"package": False, "constraint-dependencies": ["c==3"]}
    assert data["tool"]["other"] == {"a": 1}
    assert data["project"] == {"name": "x"}
    empty = second.replace('[\n    "c==3",\n]', "[]")
    assert "constraint-dependencies = []" in empty
    emptied = with_pins(empty, ["d==4"])
    assert tomllib.loads(emptied)["tool"]["uv"]["constraint-dependencies"] == ["d==4"]


def test_with_pins_refuses_a_file_without_a_uv_table() -> None:
    with pytest.raises(ValueError, match=r"\[tool.uv\]"):
        with_pins('[project]\nname = "x"\n', ["a==1"])
