"""``ctcd promote``, ``route``, ``merge``, ``rollout``, ``rollback``, ``history``: commits that move serving."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from workflows.cli.output import Output, OutputOpt, console, print_json, settings, technique_named
from workflows.errors import CtcdError

if TYPE_CHECKING:
    from workflows.delivery.ledger import Entry

EnvOpt = Annotated[str, typer.Option(help="staging or production.")]


class Strategy(StrEnum):
    """How a promoted version takes traffic: all of it, a canary's share, or an A/B split."""

    canary = "canary"
    full = "full"
    ab = "ab"


def promote(
    technique: str,
    version: str,
    env: EnvOpt = "staging",
    strategy: Annotated[Strategy, typer.Option(help="How the version takes traffic.")] = Strategy.canary,
    percent: Annotated[int, typer.Option(help="Canary traffic percent.")] = 20,
    b_version: Annotated[str | None, typer.Option(help="The B version for --strategy ab.")] = None,
    weights: Annotated[str, typer.Option(help="A/B weights, e.g. 50,50.")] = "50,50",
    to_main: Annotated[bool | None, typer.Option("--to-main/--branch", help="Default: per CTCD_AUTO_MERGE.")] = None,
) -> None:
    """Pin a registered version in an environment through a git commit (canary by default)."""
    from mlflow.exceptions import MlflowException

    from workflows.delivery.pin import Request, pin_version

    config = settings()
    technique_named(technique)
    config.require_reachable("mlflow")
    request = Request(technique, version, env, strategy.value, percent, b_version or "", weights)
    try:
        result = pin_version(config, request, {"Source": "cli"}, to_main=to_main, registry_metrics=True)
    except (CtcdError, ValueError, MlflowException) as exc:  # the version, the strategy or the registry
        raise CtcdError(f"cannot promote {technique} v{version}: {exc}") from exc
    state = "merged into " + config.git_branch if result.merged else f"waiting on branch {result.branch}"
    note = "" if result.changed else " (already there: nothing new committed)"
    console.print(f"[green]✓[/] {technique} v{version} → {env}: commit {result.commit[:12]}, {state}{note}")


def route(
    task: str,
    weights: Annotated[str, typer.Option(help="Percent per technique, e.g. intent-classifier=70,intent-spacy=30.")],
    channel: Annotated[
        list[str] | None, typer.Option(help="CHANNEL=TECHNIQUE: that channel's requests go to it alone (repeatable).")
    ] = None,
    env: EnvOpt = "staging",
    to_main: Annotated[bool | None, typer.Option("--to-main/--branch", help="Default: per CTCD_AUTO_MERGE.")] = None,
) -> None:
    """Route a task's requests between its techniques: an A/B split, and a technique per channel (InferenceGraph)."""
    from models.contract import by_task
    from workflows.delivery import routing

    config = settings()
    techniques = by_task().get(task, [])
    if len(techniques) < 2:
        shared = sorted(t for t, members in by_task().items() if len(members) > 1)
        raise CtcdError(f"no task {task!r} that several techniques solve (tasks: {', '.join(shared) or 'none'})")
    try:
        given, channels = routing.parse_weights(weights), routing.parse_channels(channel or [])
        routing.check_members(task, [*given, *channels.values()], techniques)
        desired = routing.Routing(task, env, given, channels)
        direct = config.merges_by_itself(env) if to_main is None else to_main
        branch, commit, changed = routing.route(config.git_remote, config.git_branch, desired, techniques, direct)
    except CtcdError as exc:
        raise CtcdError(f"cannot route {task} in {env}: {exc}") from exc
    state = "merged into " + config.git_branch if direct else f"waiting on branch {branch} (`ctcd merge {branch}`)"
    note = "" if changed else " (already there: nothing new committed)"
    console.print(f"[green]✓[/] {task} in {env}: commit {commit[:12]}, {state}{note}")


def merge(
    branch: str,
    force: Annotated[bool, typer.Option("--force", help="Merge even a stale branch (older than the pin).")] = False,
) -> None:
    """Merge a promotion branch on the GitOps remote, like a pull request's merge button (stale ones refused)."""
    from workflows.delivery import promotion

    config = settings()
    try:
        commit = promotion.merge(config.git_remote, config.git_branch, branch, force=force)
    except promotion.AlreadyMerged as done:
        console.print(f"[green]✓[/] {done}: nothing to do")
        return
    console.print(f"[green]✓[/] merged {branch} into {config.git_branch}: {commit[:12]}")


def rollback(
    technique: str,
    env: EnvOpt = "staging",
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", help="A revision of `ctcd history` (default: the one before).")
    ] = None,
) -> None:
    """Serve an earlier model again: a new commit pinning it (like `kubectl rollout undo`), never a revert."""
    from workflows.delivery import rollback as undo

    config = settings()
    result = undo.rollback(config.git_remote, config.git_branch, technique, env, to_revision)
    note = "" if result.changed else " (already serving it: nothing committed)"
    console.print(f"[green]✓[/] rolled back {technique} in {env}: commit {result.commit[:12]}{note}")


def rollout(technique: str, env: EnvOpt = "staging") -> None:
    """End a canary: send 100% to the new version (removes canaryTrafficPercent)."""
    from workflows.delivery import promotion

    config = settings()
    result = promotion.rollout(config.git_remote, config.git_branch, technique, env)
    console.print(f"[green]✓[/] {technique} rolled out to 100% in {env}: {result.commit[:12]}")


def history(
    technique: str,
    env: Annotated[str | None, typer.Option(help="staging or production (default: both).")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Each promotion of a technique, from the commit trailers on main: the ledger `rollback` walks."""
    from workflows.delivery import ledger, overlays

    config = settings()
    technique_named(technique)
    environments = [env] if env else list(overlays.ENVIRONMENTS)
    found = {e: ledger.history(config.git_remote, config.git_branch, technique, e) for e in environments}
    if output == "json":
        print_json({e: [x.as_json() for x in entries] for e, entries in found.items()})
        return
    for environment, entries in found.items():
        console.print(_history_table(f"{technique} in {environment}", entries))


def _history_table(title: str, entries: list[Entry]) -> Table:
    columns = ("REVISION", "TIME", "VERSION", "TRAFFIC", "RUN", "DATASET", "METRIC", "SOURCE", "COMMIT", "NOTE")
    table = Table(*columns, title=title)
    for e in entries:
        note = e.flag or (f"rollback to {e.rollback_to}" if e.rollback_to else "")
        table.add_row(
            str(e.revision),
            e.time,
            f"v{e.version}",
            e.traffic,
            e.run_id[:12],
            e.dataset_version,
            e.metric,
            e.source,
            e.commit[:12],
            note,
        )
    return table
