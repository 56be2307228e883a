"""The README's curl walk-through runs as printed against the running system."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

from vidmesh.devstack.samples import sample_mp4
from vidmesh.devstack.system import RunningSystem

README = Path(__file__).parents[2] / "README.md"


def _walkthrough() -> str:
    text = README.read_text()
    start = text.index("### The API in curl")
    match = re.compile(r"```bash\n(.*?)```", re.S).search(text, start)
    assert match is not None, "no bash block in the README's curl section"
    return match.group(1)


def test_readme_curl_walkthrough_runs_against_the_system(
    system: RunningSystem, tmp_path: Path
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    script = (
        _walkthrough()
        .replace("http://127.0.0.1:3000", system.gateway_url)
        .replace("ada@example.com", email)
    )
    (tmp_path / "clip.mp4").write_bytes(sample_mp4(300_000))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert '"accessToken"' in lines[0]
    assert lines[-1] == "204"  # signout
    assert "100" in [line.strip() for line in lines]  # the ranged download's byte count
    assert (tmp_path / "copy.mp4").read_bytes() == sample_mp4(300_000)
    assert '"title":"My first video"' in result.stdout
    assert "played from the store" in lines
    assert '"title":"Uploaded directly"' in result.stdout
