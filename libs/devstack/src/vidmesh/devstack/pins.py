"""Every third-party dependency pinned to one exact version, in a file that names no index.

``uv.lock`` would pin everything, but it records the URL of the package index that resolved it,
which is the machine's, not ours to publish, so it is not committed. Instead the workspace's
``pyproject.toml`` carries ``[tool.uv] constraint-dependencies``: one ``name==version`` line per
package the workspace installs, transitive ones included. ``uv sync`` (CI), ``uv run`` (``vidmesh
up``) and the images' ``uv lock`` resolve inside those pins, so every install of one commit gets
the same versions, whichever index serves them.

``uv run vidmesh pin`` rewrites the list from the current resolution (``uv export``). To move a
package, change its pin; when a new dependency conflicts with a pin, empty the list
(``constraint-dependencies = []``), ``uv lock``, then ``vidmesh pin``.
tests/test_pins.py fails when something installed is not pinned.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

EXPORT: Final = (
    "uv",
    "export",
    "--all-packages",
    "--all-groups",
    "--no-emit-workspace",
    "--no-hashes",
    "--no-header",
    "--no-annotate",
    "--format",
    "requirements.txt",
)
"""The resolution of the whole workspace (every app, library and dev group), one line per
package: ``name==version`` and, where it applies, ``; marker``."""

_BLOCK = re.compile(r"^constraint-dependencies = \[\n?(?:.*\n)*?\]\n", re.MULTILINE)
_TOOL_UV = re.compile(r"^\[tool\.uv\]\n", re.MULTILINE)
_COMMENT: Final = "# Every installed package, exactly: `uv run vidmesh pin` (docs/deploy.md).\n"


def exported_pins(root: Path) -> list[str]:
    """``name==version[ ; marker]`` for every third-party package the workspace resolves to."""
    output = subprocess.run(EXPORT, cwd=root, check=True, capture_output=True, text=True).stdout
    return sorted(
        line.strip() for line in output.splitlines() if line.strip() and not line.startswith("#")
    )


def render(pins: Sequence[str]) -> str:
    lines = "".join(f'    "{pin}",\n' for pin in pins)
    return f"constraint-dependencies = [\n{lines}]\n"


def with_pins(pyproject: str, pins: Sequence[str]) -> str:
    """``pyproject`` (its text) with its ``[tool.uv]`` pins replaced by ``pins``."""
    block = render(pins)
    if _BLOCK.search(pyproject):
        return _BLOCK.sub(lambda _: block, pyproject, count=1)
    table = _TOOL_UV.search(pyproject)
    if table is None:
        raise ValueError("pyproject.toml has no [tool.uv] table")
    return pyproject[: table.end()] + _COMMENT + block + pyproject[table.end() :]


def read_pins(pyproject: Path) -> list[str]:
    """The pins the workspace's ``pyproject.toml`` holds now."""
    data = tomllib.loads(pyproject.read_text())
    pins: list[str] = data.get("tool", {}).get("uv", {}).get("constraint-dependencies", [])
    return pins


def pin(root: Path) -> list[str]:
    """Rewrite ``root/pyproject.toml``'s pins from the current resolution; the new pins."""
    pyproject = root / "pyproject.toml"
    pins = exported_pins(root)
    pyproject.write_text(with_pins(pyproject.read_text(), pins))
    return pins
