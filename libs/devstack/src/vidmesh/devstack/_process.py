"""Small helpers shared by the embedded servers: free ports and stopping a child process."""

from __future__ import annotations

import signal
import socket
import subprocess
from typing import IO, Any

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def stop_process(
    process: subprocess.Popen[Any],
    first_signal: signal.Signals,
    *,
    timeout: float,
    then: signal.Signals | None = None,
) -> int:
    """Send ``first_signal``, wait up to ``timeout`` seconds, then ``then`` (if given) and finally
    SIGKILL; always reaps the process. Returns its exit code."""
    for sig, wait in ((first_signal, timeout), (then, 5.0)):
        if sig is None:
            continue
        if process.poll() is not None:
            return process.returncode
        process.send_signal(sig)
        try:
            return process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    return process.wait()


def read_tail(log: IO[bytes], limit: int = 4000) -> str:
    """The last ``limit`` bytes of a log file we opened, as text (for error messages)."""
    log.flush()
    log.seek(0)
    data = log.read()
    return data[-limit:].decode("utf-8", "replace")
