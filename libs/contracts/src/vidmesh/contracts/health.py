"""The pattern every service answers, so a caller (the gateway's /readyz, ``vidmesh up``) can
tell a live, connected service from a listening socket."""

from __future__ import annotations

from typing import Final

from pydantic import Field
from vidmesh.contracts.wire import WireModel

HEALTH: Final = {"cmd": "health"}


class Health(WireModel):
    service: str = Field(max_length=64)
    ok: bool
    checks: dict[str, bool]
    """Each dependency the service needs (``database``, ``broker``) and whether it answered."""
