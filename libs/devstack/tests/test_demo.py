"""``vidmesh demo``'s journey against the running platform, and its answer when none runs."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from vidmesh.devstack._process import free_port
from vidmesh.devstack.databases import drop_database
from vidmesh.devstack.demo import SystemNotRunning, run_demo
from vidmesh.devstack.services import SERVICES
from vidmesh.devstack.system import running_system


def test_the_demo_says_when_nothing_runs_at_the_url() -> None:
    with pytest.raises(SystemNotRunning, match="vidmesh up"):
        run_demo(f"http://127.0.0.1:{free_port()}", say=lambda _: None)


def test_the_demo_uploads_downloads_and_sees_its_download_counted(
    postgres_url: str, tmp_path: Path
) -> None:
    steps: list[str] = []
    prefix = f"test_{uuid.uuid4().hex[:8]}_"
    try:
        with running_system(tmp_path, postgres_url=postgres_url, database_prefix=prefix) as system:
            result = run_demo(system.gateway_url, say=steps.append, size=64 * 1024)
    finally:
        for service in SERVICES:
            asyncio.run(drop_database(postgres_url, prefix + service.database, role=True))
    assert [entry.downloads for entry in result.top if entry.videoId == result.video_id] == [1]
    assert steps[0].startswith(f"signed up {result.email}")
    assert steps[-1] == "analytics counted the download"
