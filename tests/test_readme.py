"""The README's service and client examples run as printed and give the output it shows."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _blocks() -> dict[str, str]:
    text = README.read_text()
    found = {}
    for name, marker in (
        ("service", "`service.py`"),
        ("client", "`client.py`"),
        ("output", "It prints:"),
    ):
        start = text.index(marker)
        match = re.compile(r"```[a-z]*\n(.*?)```", re.S).search(text, start)
        assert match is not None, f"no code block after {marker}"
        found[name] = match.group(1)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the README service exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the README service never listened")


def test_readme_service_and_client_print_what_the_readme_shows(tmp_path: Path) -> None:
    blocks = _blocks()
    port = str(_free_port())
    service = tmp_path / "service.py"
    client = tmp_path / "client.py"
    service.write_text(blocks["service"].replace("3001", port))
    client.write_text(blocks["client"].replace("3001", port))
    server = subprocess.Popen([sys.executable, str(service)], stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(int(port), server)
        result = subprocess.run(
            [sys.executable, str(client)], capture_output=True, text=True, timeout=30, check=False
        )
    finally:
        server.terminate()
        exit_code = server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == blocks["output"]
    assert exit_code == 0, "SIGTERM should drain and stop the service cleanly"
