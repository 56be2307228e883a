"""Child processes for ``vidmesh up``: started, watched, restarted and stopped like Compose does.

Each child runs in a session (and process group) of its own, so a terminal's Ctrl-C reaches only
``vidmesh up``, which then drains the children in order; signals go to the whole group. Output
(stdout and stderr together) is handed over line by line with the child's name. A child is
``ready`` once its probe answers; one that exits unasked is restarted after a pause that doubles
from 0.5 s up to 10 s and starts over once a run lasted 30 s (``RestartPolicy``).

On Linux a child also gets ``PR_SET_PDEATHSIG`` (SIGKILL): if this process dies without stopping
it (``kill -9``), the kernel ends it rather than leaving it on its port.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import enum
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from vidmesh.devstack.probes import Probe


class ChildState(enum.StrEnum):
    STARTING = "starting"
    """Spawned; its probe has not answered yet."""
    READY = "ready"
    RESTARTING = "restarting"
    """Exited unasked; waiting out the backoff before the next start."""
    STOPPED = "stopped"
    """Stopped on request (or never started)."""
    CRASHED = "crashed"
    """Exited unasked and will not be restarted (the policy's ``max_restarts`` ran out)."""


LineSink = Callable[[str, str], None]
"""Called with (child name, one line of its output, without the newline)."""


@dataclass(frozen=True)
class ChildEvent:
    """A child changed state. ``exit_code`` is set when it exited (negative: killed by that
    signal); ``delay`` is the pause before the next start, when it is ``restarting``."""

    name: str
    state: ChildState
    pid: int | None
    restarts: int
    exit_code: int | None = None
    delay: float | None = None


EventSink = Callable[[ChildEvent], None]


@dataclass(frozen=True)
class RestartPolicy:
    """Compose's ``restart: always``: restart on every unasked exit, with exponential backoff."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    reset_after: float = 30.0
    """A run that lasted this long counts as healthy: the next crash waits ``first_delay``."""
    max_restarts: int | None = None
    """After this many restarts a further exit leaves the child ``crashed``; None: no limit."""

    def delay(self, failures: int) -> float:
        """Pause after the ``failures``-th crash in a row (1, 2, ...)."""
        return float(min(self.first_delay * 2 ** max(failures - 1, 0), self.max_delay))


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    """The child's whole environment; None inherits ours."""
    probe: Probe | None = None
    """None: ready as soon as it is spawned."""
    cwd: str | None = None


class ChildFailed(RuntimeError):
    """A child could not become ready (it crashed for good, was stopped, or timed out)."""


_LINE_LIMIT: Final = 1024 * 1024
_TAIL_LINES: Final = 200
_PR_SET_PDEATHSIG: Final = 1


class Child:
    """One supervised process: ``await start()``, ``await wait_ready()``, ``await stop()``."""

    def __init__(
        self,
        spec: ChildSpec,
        *,
        policy: RestartPolicy | None = None,
        on_line: LineSink | None = None,
        on_event: EventSink | None = None,
        probe_interval: float = 0.1,
        probe_timeout: float = 3.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.spec = spec
        self._policy = policy or RestartPolicy()
        self._on_line = on_line
        self._on_event = on_event
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._stop_timeout = stop_timeout
        self.state = ChildState.STOPPED
        self.restarts = 0
        self.exit_code: int | None = None
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        """The last lines of output, for error messages."""
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        self._exited: asyncio.Event = asyncio.Event()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        """The running process's id; None between runs."""
        process = self._process
        return None if process is None or process.returncode is not None else process.pid

    async def start(self) -> None:
        """Spawn the child (raising if that fails) and supervise it from then on."""
        if self._task is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._stopping.clear()
        process = await self._spawn()
        self._task = asyncio.create_task(self._supervise(process), name=f"supervise-{self.name}")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the child is ready; ChildFailed if it is stopped or crashed for good, or
        not ready within ``timeout`` seconds."""

        def settled() -> bool:
            return self.state in (ChildState.READY, ChildState.STOPPED, ChildState.CRASHED)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(settled)
        except TimeoutError:
            raise ChildFailed(self._failure(f"not ready after {timeout} s")) from None
        if self.state is not ChildState.READY:
            raise ChildFailed(self._failure(f"is {self.state}"))

    def send_signal(self, signum: int) -> int:
        """Send ``signum`` to the child's process group; returns the pid it went to. Unless the
        child is being stopped, an exit that follows counts as a crash (and is restarted)."""
        pid = self.pid
        if pid is None:
            raise ChildFailed(f"{self.name} is not running")
        _signal_group(pid, signum)
        return pid

    async def kill(self, signum: int = signal.SIGKILL) -> int:
        """``send_signal``, then wait until that process has exited; returns its pid."""
        exited = self._exited
        pid = self.send_signal(signum)
        await exited.wait()
        return pid

    async def stop(self, timeout: float | None = None) -> None:
        """SIGTERM to the group, SIGKILL after ``timeout`` (default ``stop_timeout``) seconds;
        no restart follows. Idempotent."""
        if timeout is not None:
            self._stop_timeout = timeout
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    def abort(self) -> None:
        """Stop without draining: SIGKILL now, no restart. ``stop()`` waits for the end."""
        self._stopping.set()
        if self.pid is not None:
            self.send_signal(signal.SIGKILL)

    # -- the supervision loop ---------------------------------------------------------------

    async def _supervise(self, process: asyncio.subprocess.Process | None) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            if process is not None:
                await self._run(process)
            if self._stopping.is_set():
                await self._set_state(ChildState.STOPPED)
                return
            limit = self._policy.max_restarts
            if limit is not None and self.restarts >= limit:
                await self._set_state(ChildState.CRASHED)
                return
            failures = 1 if loop.time() - started >= self._policy.reset_after else failures + 1
            delay = self._policy.delay(failures)
            await self._set_state(ChildState.RESTARTING, delay=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                await self._set_state(ChildState.STOPPED)
                return
            self.restarts += 1
            process = await self._respawn()

    async def _respawn(self) -> asyncio.subprocess.Process | None:
        try:
            return await self._spawn()
        except OSError as error:  # e.g. the executable vanished: a crash like any other
            self._emit_line(f"could not start: {error}")
            self.exit_code = None
            return None

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.exit_code = None
        self._exited = asyncio.Event()
        process = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=None if self.spec.env is None else dict(self.spec.env),
            cwd=self.spec.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
            limit=_LINE_LIMIT,
        )
        self._process = process
        _live_groups.add(process.pid)
        await self._set_state(ChildState.STARTING)
        return process

    async def _run(self, process: asyncio.subprocess.Process) -> None:
        """Pump output and probe readiness until the process exits; on ``stop()``, end it."""
        assert process.stdout is not None
        pump = asyncio.create_task(self._pump(process.stdout))
        probe = asyncio.create_task(self._probe_until_ready(process))
        stopping = asyncio.create_task(self._stopping.wait())
        exited = asyncio.create_task(process.wait())
        try:
            await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                await self._terminate(process, exited)
            self.exit_code = await exited
        finally:
            _live_groups.discard(process.pid)
            for task in (probe, stopping, exited):
                task.cancel()
            # A grandchild may hold the pipe open: do not wait for it forever.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(pump, 1.0)
            await asyncio.gather(probe, stopping, return_exceptions=True)
            self._exited.set()

    async def _terminate(
        self, process: asyncio.subprocess.Process, exited: asyncio.Task[int]
    ) -> None:
        """SIGTERM (the child drains), then SIGKILL once ``stop_timeout`` has passed."""
        _signal_group(process.pid, signal.SIGTERM)
        done, _ = await asyncio.wait([exited], timeout=self._stop_timeout)
        if not done:
            _signal_group(process.pid, signal.SIGKILL)

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as error:  # end of output
                if error.partial:
                    self._emit_line(error.partial.decode("utf-8", "replace"))
                return
            except asyncio.LimitOverrunError as error:  # an endless line: hand over a piece
                line = await reader.readexactly(error.consumed)
            self._emit_line(line.decode("utf-8", "replace"))

    def _emit_line(self, text: str) -> None:
        text = text.rstrip("\r\n")
        self.tail.append(text)
        if self._on_line is not None:
            self._on_line(self.name, text)

    async def _probe_until_ready(self, process: asyncio.subprocess.Process) -> None:
        probe = self.spec.probe
        while probe is not None and process.returncode is None:
            try:
                if await asyncio.wait_for(probe(), self._probe_timeout):
                    break
            except Exception:  # a probe boundary: any failure means "not ready"
                pass
            await asyncio.sleep(self._probe_interval)
        if process.returncode is None and not self._stopping.is_set():
            await self._set_state(ChildState.READY)

    async def _set_state(self, state: ChildState, *, delay: float | None = None) -> None:
        async with self._changed:
            self.state = state
            self._changed.notify_all()
        if self._on_event is not None:
            pid = None if self._process is None else self._process.pid
            event = ChildEvent(self.name, state, pid, self.restarts, self.exit_code, delay)
            self._on_event(event)

    def _failure(self, what: str) -> str:
        tail = "\n".join(list(self.tail)[-30:])
        return f"{self.name} {what}; its last output:\n{tail}"


@dataclass
class Supervisor:
    """Several children started in stages (each ``start`` call is one) and stopped in reverse
    stage order, each stage at once: the gateway stops before the services it calls."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    on_line: LineSink | None = None
    on_event: EventSink | None = None
    stop_timeout: float = 10.0
    children: dict[str, Child] = field(default_factory=dict, init=False)
    _stages: list[list[Child]] = field(default_factory=list, init=False)

    def __getitem__(self, name: str) -> Child:
        return self.children[name]

    async def start(self, *specs: ChildSpec, ready_timeout: float | None = None) -> None:
        """Spawn these children together and wait until all are ready (ChildFailed if not)."""
        stage = [self._child(spec) for spec in specs]
        self._stages.append(stage)
        for child in stage:
            await child.start()
        await asyncio.gather(*(child.wait_ready(ready_timeout) for child in stage))

    async def stop(self) -> None:
        """Stop every child, last stage first. Idempotent."""
        while self._stages:
            stage = self._stages.pop()
            await asyncio.gather(*(child.stop() for child in stage))

    def kill_all(self) -> None:
        """SIGKILL every child at once, restarting none (a second Ctrl-C); ``stop`` still
        has to be awaited."""
        for child in self.children.values():
            child.abort()

    def _child(self, spec: ChildSpec) -> Child:
        if spec.name in self.children:
            raise ValueError(f"a child named {spec.name!r} already exists")
        child = Child(
            spec,
            policy=self.policy,
            on_line=self.on_line,
            on_event=self.on_event,
            stop_timeout=self.stop_timeout,
        )
        self.children[spec.name] = child
        return child


# -- children die with us --------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Loaded here, not in the forked child, where loading a library could deadlock.
_prctl: Final = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the forked child before exec: SIGKILL it when the thread that spawned it ends."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


_live_groups: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A child still running when the interpreter exits (nobody called ``stop``)."""
    for pid in list(_live_groups):
        _signal_group(pid, signal.SIGKILL)
