"""``ctcd template``, ``ctcd cron``, ``ctcd apply`` and ``ctcd lint``: a user's own objects on the local platform.

WorkflowTemplates, ClusterWorkflowTemplates and CronWorkflows a user adds are kept in the state folder next to
the repo's library (``argo template create`` / ``argo cron create``); ``lint`` checks a file offline as
``argo lint --offline`` does, and says whether the local engine can run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workflows.cli.output import Output, OutputOpt, console, print_json, print_yaml, settings
from workflows.errors import CtcdError

FileArg = Annotated[Path, typer.Argument(help="A YAML file of Argo objects.", exists=False)]
KindOpt = Annotated[bool, typer.Option("--cluster-scope", help="A ClusterWorkflowTemplate.")]


def _documents(path: Path) -> list[dict[str, Any]]:
    from workflows.engine import load_documents

    try:
        return load_documents(path)
    except (OSError, ValueError) as exc:
        raise CtcdError(str(exc), hint="give the path of a YAML file of Argo objects") from exc


def lint_problems(doc: dict[str, Any], source: str) -> list[str]:
    """What Argo's schema refuses in one object, then what the local engine cannot run."""
    from workflows.delivery.manifests import ManifestError, validate_argo
    from workflows.engine import UnsupportedSpec, casing, validate

    problems: list[str] = []
    doc = casing.canonical(doc)  # Argo matches field names without regard to case (`valueFrom.Parameter`)
    schema_doc = {**doc, "kind": "WorkflowTemplate"} if doc.get("kind") == "ClusterWorkflowTemplate" else doc
    try:
        validate_argo(schema_doc, source)
    except ManifestError as exc:
        problems += [line.strip()[2:] for line in str(exc).splitlines()[1:]]
    spec_doc = (
        {**doc, "spec": (doc.get("spec") or {}).get("workflowSpec", {})} if doc["kind"] == "CronWorkflow" else doc
    )
    try:
        validate(spec_doc)
    except UnsupportedSpec as exc:
        problems += [f"local engine: {p}" for p in exc.problems]
    return problems


def lint(file: FileArg) -> None:
    """Check Argo objects offline (like `argo lint --offline`) and whether the local engine can run them."""
    docs = [d for d in _documents(file) if str(d.get("apiVersion", "")).startswith("argoproj.io/")]
    if not docs:
        raise CtcdError(f"{file}: no Argo Workflows objects in it")
    failed = False
    for doc in docs:
        label = (
            f"{doc['kind']}/{doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName', '')}"
        )
        problems = lint_problems(doc, str(file))
        failed = failed or bool(problems)
        console.print(f"{file}: {label}: " + ("[green]ok[/]" if not problems else "[red]problems[/]"))
        for problem in problems:
            console.print(f"  - {problem}", markup=False)
    if failed:
        raise typer.Exit(1)


def _add(file: Path, kinds: tuple[str, ...]) -> None:
    from workflows.local import applied

    docs = _documents(file)
    for doc in docs:
        argo = str(doc.get("apiVersion", "")).startswith("argoproj.io/")
        problems = lint_problems(doc, str(file)) if argo and doc.get("kind") in kinds else []
        if problems:
            raise CtcdError(f"{file}: {doc['kind']} is not valid:\n  - " + "\n  - ".join(problems))
    for line in applied.apply(settings(), docs, kinds):
        console.print(line)


def apply(file: FileArg) -> None:
    """Add ConfigMaps, PersistentVolumeClaims, templates and CronWorkflows from a file (like `kubectl apply -f`)."""
    from workflows.local.applied import KINDS

    _add(file, KINDS)


def template_create(file: FileArg) -> None:
    """Add WorkflowTemplates / ClusterWorkflowTemplates from a file (like `argo template create`)."""
    from workflows.local.applied import TEMPLATE_KINDS

    _add(file, TEMPLATE_KINDS)


def _kind(cluster_scope: bool) -> str:
    return "ClusterWorkflowTemplate" if cluster_scope else "WorkflowTemplate"


def template_list(cluster_scope: KindOpt = False, output: OutputOpt = Output.table) -> None:
    """List the templates runs can use: the repo's and the ones you added."""
    from workflows.local import applied, runs

    kind = _kind(cluster_scope)
    library = runs.library(settings())
    mine = set(applied.names(settings(), kind))
    names = library.names(kind)
    if output == "json":
        print_json([library.get(kind, n) for n in names])
        return
    for name in names:
        console.print(f"{name:<40} {'added' if name in mine else 'repo'}")


def template_get(name: str, cluster_scope: KindOpt = False, output: OutputOpt = Output.yaml) -> None:
    """Show one template (like `argo template get`)."""
    from workflows.local import runs

    try:
        doc = runs.library(settings()).get(_kind(cluster_scope), name)
    except KeyError as exc:
        raise CtcdError(str(exc.args[0]), hint="`ctcd template list` shows them") from exc
    print_json(doc) if output == "json" else print_yaml(doc)


def template_delete(name: str, cluster_scope: KindOpt = False) -> None:
    """Delete a template you added (the repo's own are in git)."""
    from workflows.local import applied

    applied.delete(settings(), _kind(cluster_scope), name)
    console.print(f"{_kind(cluster_scope).lower()}/{name} deleted")


def cron_create(file: FileArg) -> None:
    """Add CronWorkflows from a file (like `argo cron create`); the scheduler fires them while the platform is up."""
    _add(file, ("CronWorkflow",))


def cron_list(output: OutputOpt = Output.table) -> None:
    """List CronWorkflows with their schedules, suspension, last and next fire (like `argo cron list`)."""
    import time
    from datetime import UTC, datetime

    from workflows.local import runs, scheduler

    config = settings()
    library = runs.library(config)
    rows: list[dict[str, Any]] = []
    for name in library.names("cronworkflow"):
        cron = library.get("cronworkflow", name)
        state = scheduler.load_state(config, name)
        last = state.get("lastScheduledTime")
        upcoming = scheduler.next_fire(cron, time.time()) if scheduler.schedules(cron) else None
        rows.append(
            {
                "name": name,
                "schedules": scheduler.schedules(cron),
                "suspended": scheduler.suspended(config, cron),
                "lastScheduledTime": datetime.fromtimestamp(last, UTC).isoformat() if last else None,
                "nextScheduledTime": datetime.fromtimestamp(upcoming, UTC).isoformat() if upcoming else None,
            }
        )
    if output == "json":
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['name']:<32} {', '.join(row['schedules']):<20} suspended={str(row['suspended']).lower():<6}"
            f" last={row['lastScheduledTime'] or '-'} next={row['nextScheduledTime'] or '-'}"
        )


def cron_delete(name: str) -> None:
    """Delete a CronWorkflow you added."""
    from workflows.local import applied

    applied.delete(settings(), "CronWorkflow", name)
    console.print(f"cronworkflow/{name} deleted")


def _cron(name: str) -> dict[str, Any]:
    from workflows.local import runs

    try:
        return runs.library(settings()).get("cronworkflow", name)
    except KeyError as exc:
        raise CtcdError(str(exc.args[0]), hint="`ctcd cron list` shows them") from exc


def cron_trigger(name: str) -> None:
    """Start a run of a CronWorkflow now (like `argo submit --from cronwf/NAME`); prints the run's name."""
    from workflows.engine import from_reference
    from workflows.local import runs

    _cron(name)
    workflow = from_reference(runs.library(settings()), f"cronworkflow/{name}")
    workflow["metadata"]["labels"]["workflows.argoproj.io/cron-workflow"] = name
    print(runs.submit_workflow(settings(), workflow)["metadata"]["name"])


def _set_suspended(name: str, value: bool) -> None:
    from workflows.local import scheduler

    _cron(name)
    config = settings()
    scheduler.save_state(config, name, {**scheduler.load_state(config, name), "suspended": value})
    console.print(f"cronworkflow/{name} {'suspended' if value else 'resumed'}")


def cron_suspend(name: str) -> None:
    """Stop a CronWorkflow firing until `ctcd cron resume` (like `argo cron suspend`)."""
    _set_suspended(name, True)


def cron_resume(name: str) -> None:
    """Let a suspended CronWorkflow fire again (like `argo cron resume`)."""
    _set_suspended(name, False)
