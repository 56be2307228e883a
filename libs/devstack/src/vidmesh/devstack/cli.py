"""``vidmesh``: ``vidmesh up`` runs the whole platform on this machine, ``vidmesh demo`` walks
through it. On a terminal ``up`` keeps a live status table under the services' log lines; piped
(CI, ``| tee``), it prints plain lines only."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from vidmesh.devstack.broker import KAFKA_BOOTSTRAP_ENV
from vidmesh.devstack.certs import ensure_certificates
from vidmesh.devstack.demo import DEFAULT_URL, DemoFailed, DemoResult, SystemNotRunning, run_demo
from vidmesh.devstack.object_storage import DEFAULT_BUCKET
from vidmesh.devstack.pins import pin as write_pins
from vidmesh.devstack.postgres import POSTGRES_URL_ENV
from vidmesh.devstack.s3 import (
    S3_BUCKET_ENV,
    S3_PUBLIC_ENDPOINT_ENV,
    ObjectStoreError,
    object_store_from_env,
)
from vidmesh.devstack.services import SERVICES, Ports
from vidmesh.devstack.supervisor import ChildEvent, ChildState
from vidmesh.devstack.system import StartupError, System
from vidmesh.transport.app import SIGNAL_REPEAT_WINDOW

app = typer.Typer(
    name="vidmesh",
    help="Run the vidmesh video platform locally.",
    add_completion=False,
    no_args_is_help=True,
)

_SELF: Final = "vidmesh"
_WIDTH: Final = max(len(name) for name in [_SELF, *(s.name for s in SERVICES)])
_COLOURS: Final = {
    "user": "cyan",
    "video": "magenta",
    "analytics": "blue",
    "api-gateway": "green",
    _SELF: "bold",
}
_STATE_STYLES: Final = {
    ChildState.STARTING: "yellow",
    ChildState.READY: "green",
    ChildState.RESTARTING: "red",
    ChildState.CRASHED: "bold red",
    ChildState.STOPPED: "dim",
}


@app.command()
def up(
    data_dir: Annotated[
        Path,
        typer.Option(help="Where PostgreSQL's and the object store's data and the secrets live."),
    ] = Path(".vidmesh"),
    port_base: Annotated[
        int, typer.Option(help="The gateway's port; user, video and analytics take the next three.")
    ] = 3000,
    postgres_url: Annotated[
        str | None,
        typer.Option(envvar=POSTGRES_URL_ENV, help="Use this PostgreSQL (a superuser URL)."),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None, typer.Option(envvar=KAFKA_BOOTSTRAP_ENV, help="Use this Kafka broker.")
    ] = None,
    s3_bucket: Annotated[
        str, typer.Option(envvar=S3_BUCKET_ENV, help="The video service's bucket.")
    ] = DEFAULT_BUCKET,
    s3_public_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar=S3_PUBLIC_ENDPOINT_ENV,
            help="The store's endpoint in URLs for browsers (default: the store's own).",
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            help="Mutual TLS between the services, certificates in DATA_DIR/tls (--no-tls: plain "
            "TCP, e.g. beside the tutorial's NestJS 9 gateway)."
        ),
    ] = True,
) -> None:
    """Start PostgreSQL, the broker, the object store and the four services; Ctrl-C drains and
    stops them. VIDMESH_S3_ENDPOINT (with VIDMESH_S3_ACCESS_KEY_ID, VIDMESH_S3_SECRET_ACCESS_KEY,
    VIDMESH_S3_REGION) names an S3 store to use instead of the embedded SeaweedFS."""
    console = Console(highlight=False)
    try:
        object_store = object_store_from_env()
    except ObjectStoreError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    view = StatusView(console)
    system = System(
        data_dir,
        ports=Ports.from_base(port_base),
        postgres_url=postgres_url or None,
        kafka_bootstrap=kafka_bootstrap or None,
        object_store=object_store,
        s3_bucket=s3_bucket,
        s3_public_endpoint=s3_public_endpoint or None,
        on_line=view.line,
        on_event=view.event,
        on_progress=view.notice,
        tls=tls,
    )
    raise typer.Exit(asyncio.run(_run(system, view)))


@app.command()
def certs(
    directory: Annotated[Path, typer.Argument(help="Where the CA and certificates go.")],
) -> None:
    """Make (or keep, while valid) a local CA and one certificate per service, each service's
    in DIRECTORY/<service>/ as tls.crt, tls.key and ca.crt: what deploy/compose.yaml mounts."""
    names = [service.name for service in SERVICES]
    made = ensure_certificates(directory, names)
    console = Console(highlight=False)
    for name in names:
        console.print(f"{name:<{_WIDTH}} {made.folder(name)}")
    console.print(f"the CA's key stays in {made.ca_key}: keep it out of the containers")


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="The gateway of a running platform.")] = DEFAULT_URL,
) -> None:
    """Sign up, upload a sample video, download it and show the most downloaded videos."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        result = run_demo(url, say=lambda text: console.print(f"[green]✓[/] {text}"))
    except SystemNotRunning as error:
        console.print(f"[red]The platform is not running:[/] {error}")
        raise typer.Exit(1) from None
    except DemoFailed as error:
        console.print(f"[red]The demo failed:[/] {error}")
        raise typer.Exit(1) from None
    console.print(top_table(result))


@app.command()
def pin(
    root: Annotated[
        Path, typer.Option(help="The workspace root (its pyproject.toml is rewritten).")
    ] = Path(),
) -> None:
    """Pin every dependency to the version resolved now (pyproject.toml's [tool.uv] pins)."""
    pins = write_pins(root.resolve())
    Console().print(f"{len(pins)} packages pinned in {root.resolve() / 'pyproject.toml'}")


def main() -> None:
    """The ``vidmesh`` console script."""
    app()


async def _run(system: System, view: StatusView) -> int:
    """Start, wait for SIGINT or SIGTERM, stop; 0 unless the system could not start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    first_signal: list[float] = []

    def on_signal() -> None:
        if not first_signal:
            first_signal.append(loop.time())
            stop.set()
        elif loop.time() - first_signal[0] > SIGNAL_REPEAT_WINDOW:
            # a second Ctrl-C: no more waiting for the services to drain. One within the
            # window is the first one again (``uv run`` forwards the terminal's SIGINT).
            view.notice("stopping now (SIGKILL)")
            system.supervisor.kill_all()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    with view.showing(system):
        starting = asyncio.create_task(system.start())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
            code = await _settle_start(starting, view, system)
            if code == 0:
                await stopping
        finally:
            stopping.cancel()
            view.notice("stopping: each service drains (Ctrl-C again to kill them at once)")
            await system.stop()
            view.notice("stopped")
    return code


async def _settle_start(starting: asyncio.Task[None], view: StatusView, system: System) -> int:
    if not starting.done():  # a stop signal came first
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, StartupError):
            await starting
        return 0
    error = starting.exception()
    if isinstance(error, (StartupError, OSError)):
        view.notice(f"could not start: {error}")
        return 1
    if error is not None:
        raise error
    view.notice(f"all services ready; the API is at {system.gateway_url} (docs at /docs)")
    view.notice("try `uv run vidmesh demo` in another terminal; Ctrl-C stops everything")
    return 0


class StatusView:
    """Where ``vidmesh up`` writes: log lines and notices, plus the live table on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._system: System | None = None

    @contextlib.contextmanager
    def showing(self, system: System) -> Iterator[None]:
        self._system = system
        if not self.console.is_terminal:
            yield
            return
        with Live(get_renderable=self.table, console=self.console, refresh_per_second=4):
            yield

    def line(self, name: str, text: str) -> None:
        if self.console.is_terminal:
            prefix = Text(f"{name:<{_WIDTH}} | ", style=_COLOURS.get(name, ""))
            self.console.print(prefix + Text(text), soft_wrap=True)
        else:  # plain, unwrapped, one line per line: for CI logs and grep
            print(f"{name:<{_WIDTH}} | {text}", flush=True)

    def notice(self, text: str) -> None:
        self.line(_SELF, text)

    def event(self, event: ChildEvent) -> None:
        self.notice(describe(event, self._port(event.name)))

    def table(self) -> Table:
        table = Table(title="vidmesh", title_justify="left", expand=False)
        for column in ("service", "port", "pid", "state", "restarts"):
            table.add_column(column)
        system = self._system
        if system is None:
            return table
        for status in system.services():
            table.add_row(
                status.name,
                str(status.port),
                str(status.pid or "-"),
                Text(status.state, style=_STATE_STYLES[status.state]),
                str(status.restarts),
            )
        table.caption = _infrastructure(system)
        return table

    def _port(self, name: str) -> int | None:
        return None if self._system is None else self._system.ports.of(name)


def describe(event: ChildEvent, port: int | None = None) -> str:
    """One line for a state change: ``video ready (pid 4242, port 3002)``."""
    name, state = event.name, event.state
    if state is ChildState.STARTING:
        return f"{name} starting (pid {event.pid})"
    if state is ChildState.READY:
        return f"{name} ready (pid {event.pid}, port {port})"
    if state is ChildState.RESTARTING:
        return (
            f"{name} exited unexpectedly ({_exit(event.exit_code)}); restart "
            f"{event.restarts + 1} in {event.delay:.1f} s"
        )
    if state is ChildState.CRASHED:
        return f"{name} crashed ({_exit(event.exit_code)}) and will not be restarted"
    return f"{name} stopped ({_exit(event.exit_code)})"


def _exit(code: int | None) -> str:
    if code is None:
        return "did not start"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _infrastructure(system: System) -> str:
    postgres, broker, store = system.embedded
    parts = []
    for name, embedded, pid in (
        ("PostgreSQL", postgres, system.postgres_pid),
        ("broker", broker, system.broker_pid),
        ("object store", store, system.object_store_pid),
    ):
        where = "stopped" if pid is None else f"pid {pid}"
        parts.append(f"{name} {where if embedded else 'external'}")
    return " · ".join(parts)


def top_table(result: DemoResult) -> Table:
    """``/api/analytics/top`` as the demo shows it; the demo's own video is marked."""
    table = Table(title="Most downloaded videos (/api/analytics/top)", title_justify="left")
    for column in ("video id", "title", "downloads"):
        table.add_column(column)
    for entry in result.top:
        style = "bold green" if entry.videoId == result.video_id else ""
        table.add_row(entry.videoId, entry.title or "", str(entry.downloads), style=style)
    return table
