"""``vidmesh``: the help, ``up`` in a pipe from start to Ctrl-C, ``demo`` with nothing running, and
the lines that report state changes."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner
from vidmesh.devstack._process import free_port
from vidmesh.devstack.broker import KAFKA_BOOTSTRAP_ENV
from vidmesh.devstack.cli import app, describe
from vidmesh.devstack.postgres import POSTGRES_URL_ENV
from vidmesh.devstack.s3 import S3_ENDPOINT_ENV
from vidmesh.devstack.services import SERVICES
from vidmesh.devstack.supervisor import ChildEvent, ChildState

VIDMESH = str(Path(sys.executable).with_name("vidmesh"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's ``tmp_path``: every new pytest session on the machine resets
    ``/tmp/pytest-of-<user>`` to mode 700, which locks the embedded PostgreSQL's own user out."""
    with tempfile.TemporaryDirectory(prefix="vidmesh-test-") as folder:
        yield Path(folder)


def test_help_names_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "up" in result.output
    assert "demo" in result.output


def test_an_s3_endpoint_without_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(S3_ENDPOINT_ENV, "http://127.0.0.1:9")
    monkeypatch.delenv("VIDMESH_S3_ACCESS_KEY_ID", raising=False)
    result = CliRunner().invoke(app, ["up", "--data-dir", "/nonexistent/never-made"])
    assert result.exit_code == 1
    assert "VIDMESH_S3_ACCESS_KEY_ID" in result.output


def test_demo_says_so_and_fails_when_nothing_runs() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["demo", "--url", url])
    assert result.exit_code == 1
    assert "not running" in result.output


def test_state_changes_read_as_sentences() -> None:
    crash = ChildEvent("video", ChildState.RESTARTING, 42, 0, exit_code=-9, delay=0.5)
    assert describe(crash) == "video exited unexpectedly (killed by SIGKILL); restart 1 in 0.5 s"
    ready = ChildEvent("user", ChildState.READY, 7, 0)
    assert describe(ready, 3001) == "user ready (pid 7, port 3001)"


def _free_port_base() -> int:
    """Four consecutive free ports (the gateway's and the three services')."""
    while True:
        base = free_port()
        if base < 65000 and all(_is_free(base + i) for i in range(1, 4)):
            return base


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pump_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output lines, read by a thread of their own."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout

    def pump() -> None:
        with contextlib.suppress(ValueError):  # closed under us, once the test is done
            for line in stdout:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: queue.Queue[str], done: re.Pattern[str], timeout: float) -> str:
    """Output up to and including the first line matching ``done`` (or the timeout)."""
    output = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        output.append(line)
        if done.search(line):
            break
    return "".join(output)


@pytest.mark.timeout(300)  # eight processes starting on a busy 2-core machine can take minutes
def test_up_in_a_pipe_starts_every_service_and_drains_on_a_doubled_sigint(data_dir: Path) -> None:
    """Ctrl-C under ``uv run`` reaches ``vidmesh up`` twice at once: one stop, every service
    drained, none killed."""
    external = (POSTGRES_URL_ENV, KAFKA_BOOTSTRAP_ENV, S3_ENDPOINT_ENV)
    env = {k: v for k, v in os.environ.items() if k not in external}
    port_base = str(_free_port_base())
    with subprocess.Popen(
        [VIDMESH, "up", "--data-dir", str(data_dir), "--port-base", port_base],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as process:
        lines = _pump_lines(process)
        try:
            output = _read_until(lines, re.compile(r"all services ready|could not start"), 180)
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            rest = _read_until(lines, re.compile(r"^vidmesh +\| stopped$"), 5)
        finally:
            if process.poll() is None:
                process.kill()
    assert re.search(r"^vidmesh +\| object store \(SeaweedFS\) ready on port \d+", output, re.M)
    for service in SERVICES:
        assert re.search(rf"^vidmesh +\| {service.name} ready \(pid \d+", output, re.M), output
    # the services' own lines, prefixed with their names
    assert re.search(r"^(user|video|analytics|api-gateway) +\| ", output, re.M), output
    assert process.returncode == 0, rest
    assert "SIGKILL" not in rest
    for service in SERVICES:
        assert f"{service.name} stopped" in rest
    assert rest.rstrip().endswith("stopped")
