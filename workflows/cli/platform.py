"""``ctcd up``, ``down``, ``status`` and ``compile``: the embedded platform and the compiled templates."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from workflows.cli.output import Output, OutputOpt, console, err_console, print_json, settings
from workflows.errors import CtcdError
from workflows.settings import REPO_ROOT


def up() -> None:
    """Start the embedded platform (S3 on SeaweedFS, MLflow) on 127.0.0.1; safe to run twice."""
    from workflows.local import runs, stack

    config = settings()
    start = time.monotonic()
    console.print(f"starting the embedded platform in {config.state_dir} (MLflow takes 10 to 40 s)…")
    waits = stack.up(config, lambda name, seconds: console.print(f"[green]✓[/] {name}: healthy after {seconds:.1f}s"))
    for name, seconds in waits.items():
        if seconds is None:
            console.print(f"[green]✓[/] {name}: already running")
    for name in runs.settle_all(config):
        console.print(f"[yellow]![/] run {name} had lost its engine worker: marked Error (see `ctcd runs get {name}`)")
    with console.status("local serving: starting the pinned revisions…"):
        problem = stack.wait_serving(config, config.startup_timeout)
    if problem:
        console.print(f"[yellow]![/] serving is up but not every InferenceService is ready yet: {escape(problem)}")
    console.print(f"platform up in {time.monotonic() - start:.1f}s — state in {config.state_dir}")


def down() -> None:
    """Stop the embedded platform's processes that `ctcd up` started."""
    from workflows.local import stack

    stopped = stack.down(settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Stop the platform and delete its state folder (data, registry, runs, git remote); keep .venv."""
    import shutil

    from workflows.local import stack

    config = settings()
    if not config.state_dir.exists():
        console.print(f"nothing to reset: {config.state_dir} does not exist")
        return
    if not yes and not typer.confirm(f"delete {config.state_dir} (every dataset, model, run and commit in it)?"):
        raise typer.Exit(1)
    stopped = stack.down(config)
    shutil.rmtree(config.state_dir)
    console.print(f"stopped {', '.join(stopped) or 'nothing'}; deleted {config.state_dir}. `ctcd up` starts afresh")


def status(output: OutputOpt = Output.table) -> None:
    """Show each service of the embedded platform: URL, pid, state and health."""
    from workflows.local import stack

    rows = stack.status(settings())
    if output == "json":
        print_json(rows)
        return
    table = Table("SERVICE", "URL", "PID", "STATE", "HEALTHY", "RSS MiB", "REASON")
    for row in rows:
        healthy = "[green]yes[/]" if row["healthy"] else "[red]no[/]"
        table.add_row(
            str(row["name"]),
            str(row["url"]),
            str(row["pid"] or "-"),
            str(row["state"]),
            healthy,
            str(row["rss_mib"] or "-"),
            escape(str(row["reason"])),
        )
    console.print(table)
    from workflows.cli.serving import pending_notes

    for line in pending_notes(settings()):
        console.print(escape(line))
    if not all(row["healthy"] for row in rows):
        raise typer.Exit(3)


def compile_(check: Annotated[bool, typer.Option("--check", help="Fail if committed YAML differs.")] = False) -> None:
    """Compile the Hera templates and each technique's KServe base into gitops/."""
    from workflows import compile as compiler

    if check:
        problems = compiler.diff()
        for problem in problems:
            err_console.print(f"[red]✖[/] {problem}")
        if problems:
            raise CtcdError("compiled YAML is out of date", hint="run `make compile` and commit the result")
        console.print("[green]✓[/] compiled YAML matches the Hera definitions")
        return
    for path in compiler.write():
        console.print(f"wrote {path.relative_to(REPO_ROOT)}")
