"""The ``ctcd`` command: a thin layer over the platform, the engine and the compiler.

It mirrors the Argo CLI where one exists (``submit``, ``runs get``, ``runs logs``) so that what users
learn locally carries over to a cluster.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from workflows.settings import SettingError, get_settings

app = typer.Typer(help="ctcd: continuous training, continuous delivery on Argo.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect workflow runs of the local engine.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
console = Console()
err_console = Console(stderr=True)

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="Output format: table (default), json, yaml or name.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@app.command()
def up() -> None:
    """Start the embedded platform (S3 on SeaweedFS, MLflow) on 127.0.0.1; safe to run twice."""
    from workflows.platform import stack

    settings = _settings()
    start = time.monotonic()
    with console.status("starting the embedded platform (S3, MLflow)…"):
        try:
            waits = stack.up(settings)
        except (stack.PlatformError, SettingError) as exc:
            raise _fail(str(exc)) from exc
    for name, seconds in waits.items():
        note = "already running" if seconds is None else f"healthy after {seconds:.1f}s"
        console.print(f"[green]✓[/] {name}: {note}")
    console.print(f"platform up in {time.monotonic() - start:.1f}s — state in {settings.state_dir}")


@app.command()
def down() -> None:
    """Stop the embedded platform's processes that `ctcd up` started."""
    from workflows.platform import stack

    stopped = stack.down(_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(output: OutputOpt = "table") -> None:
    """Show each service of the embedded platform: URL, pid, state and health."""
    from workflows.platform import stack

    rows = stack.status(_settings())
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table("SERVICE", "URL", "PID", "STATE", "HEALTHY", "RSS MiB")
    for row in rows:
        healthy = "[green]yes[/]" if row["healthy"] else "[red]no[/]"
        table.add_row(str(row["name"]), str(row["url"]), str(row["pid"] or "-"), str(row["state"]), healthy,
                      str(row["rss_mib"] or "-"))
    console.print(table)
    if not all(row["healthy"] for row in rows):
        raise typer.Exit(3)


def _settings():  # type: ignore[no-untyped-def]
    try:
        return get_settings()
    except SettingError as exc:
        raise _fail(str(exc)) from exc


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
