"""The supervisor over small ``python -c`` children: output, readiness, restarts, stopping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from vidmesh.devstack._process import free_port
from vidmesh.devstack.probes import tcp_health_probe
from vidmesh.devstack.supervisor import (
    Child,
    ChildEvent,
    ChildFailed,
    ChildSpec,
    ChildState,
    RestartPolicy,
    Supervisor,
)
from vidmesh.kit.health import health_router
from vidmesh.transport.testing import serve_tcp, wait_until

FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, reset_after=30.0)


def script(source: str) -> tuple[str, ...]:
    return (sys.executable, "-c", textwrap.dedent(source))


async def never() -> bool:
    return False


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.events: list[ChildEvent] = []

    def line(self, name: str, text: str) -> None:
        self.lines.append((name, text))

    def event(self, event: ChildEvent) -> None:
        self.events.append(event)

    def states(self) -> list[ChildState]:
        return [event.state for event in self.events]

    def child(self, spec: ChildSpec, policy: RestartPolicy = FAST, **options: float) -> Child:
        return Child(spec, policy=policy, on_line=self.line, on_event=self.event, **options)


async def test_output_lines_come_with_the_child_name() -> None:
    recorder = Recorder()
    supervisor = Supervisor(policy=FAST, on_line=recorder.line)
    source = """
        import sys, time
        print("hello", flush=True)
        print("oops", file=sys.stderr, flush=True)
        time.sleep(60)
    """
    await supervisor.start(ChildSpec("one", script(source)), ChildSpec("two", script(source)))
    await wait_until(lambda: len(recorder.lines) == 4)
    await supervisor.stop()
    assert sorted(recorder.lines) == [
        ("one", "hello"),
        ("one", "oops"),
        ("two", "hello"),
        ("two", "oops"),
    ]


async def test_a_line_without_a_final_newline_is_still_delivered() -> None:
    recorder = Recorder()
    child = recorder.child(ChildSpec("c", script("print('a\\nb', end='')")), RestartPolicy())
    await child.start()
    await wait_until(lambda: len(recorder.lines) == 2)
    await child.stop()
    assert recorder.lines == [("c", "a"), ("c", "b")]


async def test_a_child_is_ready_only_once_its_probe_answers() -> None:
    port = free_port()
    source = f"""
        import socket, time
        time.sleep(0.5)
        server = socket.create_server(("127.0.0.1", {port}))
        time.sleep(60)
    """

    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    child = Child(ChildSpec("svc", script(source), probe=listening))
    started = time.monotonic()
    await child.start()
    assert child.state is ChildState.STARTING
    await child.wait_ready(timeout=10)
    assert time.monotonic() - started >= 0.5
    with socket.create_connection(("127.0.0.1", port)):
        pass
    await child.stop()


async def test_a_crashing_child_is_restarted_with_doubling_backoff() -> None:
    recorder = Recorder()
    child = recorder.child(ChildSpec("crash", script("raise SystemExit(3)")))
    await child.start()
    await wait_until(lambda: child.restarts >= 4, timeout=10)
    await child.stop()
    restarting = [e for e in recorder.events if e.state is ChildState.RESTARTING]
    assert [e.delay for e in restarting[:4]] == [0.05, 0.1, 0.2, 0.2]
    assert all(e.exit_code == 3 for e in restarting)
    assert child.state is ChildState.STOPPED


async def test_backoff_starts_over_after_a_long_enough_run() -> None:
    recorder = Recorder()
    policy = RestartPolicy(first_delay=0.05, max_delay=1.0, reset_after=0.2)
    child = recorder.child(ChildSpec("flaky", script("import time; time.sleep(0.3)")), policy)
    await child.start()
    await wait_until(lambda: child.restarts >= 2, timeout=10)
    await child.stop()
    delays = [e.delay for e in recorder.events if e.state is ChildState.RESTARTING]
    assert delays[:2] == [0.05, 0.05]


async def test_a_child_past_its_restart_limit_is_crashed() -> None:
    recorder = Recorder()
    policy = RestartPolicy(first_delay=0.01, max_restarts=2)
    spec = ChildSpec("dead", script("raise SystemExit(1)"), probe=never)
    child = recorder.child(spec, policy)
    await child.start()
    with pytest.raises(ChildFailed, match="dead is crashed"):
        await child.wait_ready(timeout=10)
    assert child.restarts == 2
    assert recorder.states().count(ChildState.STARTING) == 3
    assert recorder.states()[-1] is ChildState.CRASHED


async def test_a_killed_child_comes_back_with_a_new_pid() -> None:
    child = Child(ChildSpec("victim", script("import time; time.sleep(60)")), policy=FAST)
    await child.start()
    await child.wait_ready(timeout=10)
    old_pid = await child.kill(signal.SIGKILL)
    assert child.exit_code == -signal.SIGKILL
    await child.wait_ready(timeout=10)
    assert child.pid not in (None, old_pid)
    assert child.restarts == 1
    await child.stop()


async def test_stop_sends_sigterm_and_lets_the_child_drain() -> None:
    recorder = Recorder()
    source = """
        import signal, sys, time
        def drain(*_):
            time.sleep(0.2)
            print("drained", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, drain)
        print("up", flush=True)
        time.sleep(60)
    """
    child = recorder.child(ChildSpec("svc", script(source)))
    await child.start()
    await wait_until(lambda: ("svc", "up") in recorder.lines, timeout=10)
    await child.stop()
    assert ("svc", "drained") in recorder.lines
    assert child.exit_code == 0
    assert child.state is ChildState.STOPPED
    assert child.restarts == 0


async def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    recorder = Recorder()
    source = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(60)
    """
    child = recorder.child(ChildSpec("stubborn", script(source)), stop_timeout=0.5)
    await child.start()
    await wait_until(lambda: ("stubborn", "up") in recorder.lines, timeout=10)
    started = time.monotonic()
    await child.stop()
    assert 0.5 <= time.monotonic() - started < 5
    assert child.exit_code == -signal.SIGKILL


async def test_stop_ends_the_childs_own_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    source = f"""
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(grandchild.pid))
        time.sleep(60)
    """
    child = Child(ChildSpec("parent", script(source)), policy=FAST)
    await child.start()
    await wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=10)
    grandchild = psutil.Process(int(pid_file.read_text()))
    await child.stop()
    await asyncio.to_thread(_wait_gone, grandchild)


def _wait_gone(process: psutil.Process) -> None:
    """Gone, or a zombie its new parent has yet to reap: either way, no longer running."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {process.pid} still runs")


async def test_stop_during_backoff_does_not_restart() -> None:
    recorder = Recorder()
    policy = RestartPolicy(first_delay=30.0)
    child = recorder.child(ChildSpec("c", script("raise SystemExit(1)")), policy)
    await child.start()
    await wait_until(lambda: child.state is ChildState.RESTARTING, timeout=10)
    started = time.monotonic()
    await child.stop()
    assert time.monotonic() - started < 1
    assert child.restarts == 0
    assert child.state is ChildState.STOPPED


async def test_supervisor_stops_the_last_stage_first() -> None:
    recorder = Recorder()
    supervisor = Supervisor(policy=FAST, on_event=recorder.event)
    forever = script("import time; time.sleep(60)")
    await supervisor.start(ChildSpec("backend", forever))
    await supervisor.start(ChildSpec("gateway", forever))
    await supervisor.stop()
    stopped = [e.name for e in recorder.events if e.state is ChildState.STOPPED]
    assert stopped == ["gateway", "backend"]


@pytest.mark.parametrize("healthy", [True, False])
async def test_tcp_health_probe_answers_the_services_health(healthy: bool) -> None:
    async def database() -> bool:
        return healthy

    async with serve_tcp(health_router("svc", {"database": database})) as served:
        probe = tcp_health_probe("127.0.0.1", served.port)
        assert await probe() is healthy


def test_children_get_their_own_process_group() -> None:
    async def run() -> None:
        child = Child(ChildSpec("c", script("import time; time.sleep(60)")), policy=FAST)
        await child.start()
        assert child.pid is not None
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
        await child.stop()

    asyncio.run(run())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor() -> None:
    parent_source = f"""
        import asyncio, time
        from vidmesh.devstack.supervisor import Child, ChildSpec

        async def main():
            child = Child(ChildSpec("c", {script("import time; time.sleep(60)")!r}))
            await child.start()
            print(child.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """
    with subprocess.Popen(script(parent_source), stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
    _wait_gone(child)


async def test_kill_all_ends_children_at_once_without_restarts() -> None:
    recorder = Recorder()
    supervisor = Supervisor(policy=FAST, on_event=recorder.event, stop_timeout=30)
    stubborn = script(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    )
    await supervisor.start(ChildSpec("a", stubborn), ChildSpec("b", stubborn))
    started = time.monotonic()
    supervisor.kill_all()
    await supervisor.stop()
    assert time.monotonic() - started < 5
    assert ChildState.RESTARTING not in recorder.states()
    assert [supervisor[name].exit_code for name in "ab"] == [-signal.SIGKILL] * 2
