"""``ctcd submit``, ``retrain`` and ``runs list|get|logs``: workflow runs, in the Argo CLI's shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from workflows.cli.output import (
    Output,
    OutputOpt,
    console,
    err_console,
    print_json,
    print_yaml,
    settings,
    technique_named,
)
from workflows.errors import CtcdError
from workflows.settings import Settings

WaitOpt = Annotated[bool, typer.Option("--wait", "-w", help="Block until the run ends; fail unless it Succeeded.")]
ClusterOpt = Annotated[bool, typer.Option("--cluster", help="On the Argo Server (ARGO_SERVER).")]


def parse_params(values: list[str]) -> dict[str, str]:
    """``-p key=value`` options as a mapping.

    Raises:
        CtcdError: An option has no ``=`` or no key.
    """
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CtcdError(f"-p {item!r}: use -p key=value")
        params[key] = value
    return params


def check_hyperparameters(technique: str, text: str, option: str) -> None:
    """Refuse hyper-parameters the technique does not declare, or of another kind, before anything is submitted.

    Raises:
        CtcdError: Naming the option, the value and the technique's declared hyper-parameters.
    """
    spec = technique_named(technique).spec
    try:
        spec.check_hyperparameters(json.loads(text))
    except ValueError as exc:
        raise CtcdError(f"{option} {text!r}: {exc}", hint="give a JSON object such as '{\"cv_folds\": 2}'") from exc


def submit(
    file: Annotated[str | None, typer.Argument(help="A Workflow or WorkflowTemplate YAML file.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="workflowtemplate/NAME or cronworkflow/NAME.")] = None,
    parameter: Annotated[list[str] | None, typer.Option("--parameter", "-p", help="key=value (repeatable).")] = None,
    wait_: WaitOpt = False,
    output: OutputOpt = Output.table,
    cluster: ClusterOpt = False,
) -> None:
    """Submit a workflow to the local engine (or, with --cluster, to Argo), like `argo submit`; prints the run id."""
    if (file is None) == (from_ is None):
        raise CtcdError("give either a FILE or --from workflowtemplate/NAME")
    params = parse_params(parameter or [])
    if "hyperparameters" in params and "technique" in params:
        check_hyperparameters(params["technique"], params["hyperparameters"], "-p hyperparameters=")
    if cluster:
        _submit_to_cluster(from_ or str(file), params, from_ is not None, output)
        return
    config = settings()
    workflow = _submit_local(config, from_ or str(file), params, from_ref=from_ is not None)
    name = workflow["metadata"]["name"]
    if output == "name":
        print(name)
    else:
        console.print(f"submitted [bold]{name}[/] — follow it with `ctcd runs get {name}`")
    if wait_:
        _wait_and_report(config, name, quiet=output == "name")


def retrain(
    technique: str,
    wait_: WaitOpt = False,
    hyperparameters: Annotated[
        str, typer.Option("--hyperparameters", help="JSON over the technique's defaults, e.g. '{\"cv_folds\": 2}'.")
    ] = "{}",
    cluster: ClusterOpt = False,
) -> None:
    """Retrain a technique now (the admin's button): prints the run id to poll with `ctcd runs get`."""
    check_hyperparameters(technique, hyperparameters, "--hyperparameters")
    parameters = {"technique": technique, "hyperparameters": hyperparameters}
    if cluster:
        _submit_to_cluster("workflowtemplate/train", parameters, True, "name")
        return
    config = settings()
    workflow = _submit_local(config, "workflowtemplate/train", parameters, from_ref=True)
    print(workflow["metadata"]["name"])
    if wait_:
        _wait_and_report(config, workflow["metadata"]["name"], quiet=True)
        from workflows.local import runs

        said = verdict(runs.wait(config, workflow["metadata"]["name"], None))
        err_console.print(f"{technique}: {said or 'no version registered'}")


def _submit_local(config: Settings, source: str, params: dict[str, str], from_ref: bool) -> dict[str, Any]:
    from workflows.local import runs

    try:
        return runs.submit(config, source, params, from_ref=from_ref)
    except (ValueError, OSError) as exc:  # a file that is not YAML, or cannot be read
        raise CtcdError(str(exc)) from exc


def _submit_to_cluster(source: str, params: dict[str, str], from_ref: bool, output: str) -> None:
    import requests

    from workflows.platform import argo

    workflow = None if from_ref else _one_workflow(Path(source))
    try:
        name = argo.create(workflow) if workflow else argo.submit(source, params)
    except (requests.RequestException, OSError, ValueError) as exc:
        raise CtcdError(f"cannot submit to the Argo Server: {exc}", hint="check ARGO_SERVER and ARGO_TOKEN") from exc
    if output == "name":
        print(name)
    else:
        console.print(
            f"submitted [bold]{name}[/] to {argo.namespace()}: follow it with `ctcd runs get {name} --cluster`"
        )


def _one_workflow(path: Path) -> dict[str, Any]:
    from workflows.engine import load_documents

    try:
        docs = [d for d in load_documents(path) if d["kind"] == "Workflow"]
    except (ValueError, OSError) as exc:
        raise CtcdError(str(exc)) from exc
    if len(docs) != 1:
        raise CtcdError(f"{path}: expected exactly one Workflow, found {len(docs)}")
    return docs[0]


def _wait_and_report(config: Settings, name: str, quiet: bool) -> None:
    from workflows.local import runs

    reported: set[str] = set()

    def progress(wf: dict[str, Any]) -> None:
        """A line on stderr as each step ends (stdout stays the run's own output, for scripts)."""
        from workflows.cli import render

        pods = [n for n in wf.get("status", {}).get("nodes", {}).values() if n["type"] == "Pod"]
        for node in sorted(pods, key=lambda n: n.get("finishedAt") or ""):
            if node["id"] not in reported and node["phase"] in ("Succeeded", "Failed", "Error", "Skipped"):
                reported.add(node["id"])
                err_console.print(f"{name}: {node['displayName']} {node['phase']} ({render.duration(node)})")

    workflow = runs.wait(config, name, progress)
    if not quiet:
        _print_run(workflow)
    if workflow["status"]["phase"] != "Succeeded":
        if quiet:  # stdout is only the run id, for scripts; say why on stderr
            _print_failure(workflow)
        raise typer.Exit(1)


def verdict(workflow: dict[str, Any]) -> str:
    """The gate's decision and the version a training run registered ('' when it registered none)."""
    nodes = workflow.get("status", {}).get("nodes", {}).values()
    for node in nodes:
        if node.get("templateName") == "register" and node["phase"] == "Succeeded":
            found = {p["name"]: p.get("value", "") for p in node.get("outputs", {}).get("parameters", [])}
            return f"registered v{found.get('version', '?')}: the gate says {found.get('decision', '?')}"
    return ""


def _print_failure(workflow: dict[str, Any]) -> None:
    """One line per failed step on stderr, and where to read the logs."""
    import sys

    name, status = workflow["metadata"]["name"], workflow["status"]
    failed = [n for n in status.get("nodes", {}).values() if n["type"] == "Pod" and n["phase"] in ("Failed", "Error")]
    print(f"{name} {status.get('phase')}: {status.get('message', '')}".rstrip(": "), file=sys.stderr)
    for node in failed:
        print(f"  {node['displayName']}: {node.get('message', node['phase'])}", file=sys.stderr)
    print(f"  logs: ctcd runs logs {name}", file=sys.stderr)


def _print_run(workflow: dict[str, Any]) -> None:
    from workflows.cli import render

    for key, value in render.summary(workflow):
        console.print(f"[bold]{key + ':':<16}[/] {value}")
    console.print()
    console.print(render.node_tree(workflow))


def runs_list(output: OutputOpt = Output.table) -> None:
    """List runs, newest first, like `argo list`."""
    from workflows.cli import render
    from workflows.engine import RunStore

    workflows = RunStore(settings().state_dir).list()
    if output == "json":
        print_json(workflows)
    elif output == "name":
        print("\n".join(w["metadata"]["name"] for w in workflows))
    else:
        console.print(render.runs_table(workflows))


def runs_get(name: str, output: OutputOpt = Output.table, cluster: ClusterOpt = False) -> None:
    """Show one run as a node tree (like `argo get`); -o json prints the Argo Workflow object."""
    import requests

    from workflows.platform import argo

    try:
        workflow = argo.get(name) if cluster else _load(name)
    except requests.RequestException as exc:
        raise CtcdError(f"cannot read {name} from the Argo Server: {exc}", hint="check ARGO_SERVER") from exc
    if output == "json":
        print_json(workflow)
    elif output == "yaml":
        print_yaml(workflow)
    else:
        _print_run(workflow)


def _load(name: str) -> dict[str, Any]:
    from workflows.engine import RunStore

    try:
        return RunStore(settings().state_dir).load(name)
    except KeyError as exc:
        raise CtcdError(str(exc.args[0])) from exc


def runs_logs(
    name: str,
    node: Annotated[str | None, typer.Option("--node", help="Only this node (id or display name).")] = None,
) -> None:
    """Print the logs of a run's steps, each line prefixed with its step, like `argo logs`."""
    from workflows.engine import RunStore

    store = RunStore(settings().state_dir)
    workflow = _load(name)
    pods = [n for n in workflow["status"].get("nodes", {}).values() if n["type"] == "Pod"]
    if node:  # a retried step's attempts are `train(0)`, `train(1)`…: `--node train` means all of them, as argo logs
        pods = [n for n in pods if node in (n["id"], n["displayName"], n["name"], _step_of(n["displayName"]))]
        if not pods:
            raise CtcdError(f"run {name} has no step {node!r}", hint=f"`ctcd runs get {name}` lists its steps")
    for pod in sorted(pods, key=lambda n: n.get("startedAt", "")):
        path = store.log_path(name, pod["id"])
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                print(f"{pod['displayName']}: {line}")


def _step_of(display_name: str) -> str:
    """``train`` for an attempt ``train(1)``; the name itself otherwise."""
    import re

    return re.sub(r"\(\d+\)$", "", display_name)


NameArg = Annotated[str, typer.Argument(help="The run's name (from `ctcd runs get`).")]


def runs_stop(name: NameArg) -> None:
    """Stop a run: running steps are killed, then the exit handler runs (like `argo stop`)."""
    from workflows.local import actions

    actions.stop(settings(), name, "stop")
    console.print(f"{name} stopped — `ctcd runs get {name}` shows it end")


def runs_terminate(name: NameArg) -> None:
    """Terminate a run at once, skipping its exit handler (like `argo terminate`)."""
    from workflows.local import actions

    actions.stop(settings(), name, "terminate")
    console.print(f"{name} terminated")


def runs_suspend(name: NameArg) -> None:
    """Suspend a run: no new step starts until `ctcd runs resume` (like `argo suspend`)."""
    from workflows.local import actions

    actions.suspend_run(settings(), name)
    console.print(f"{name} suspended — resume it with `ctcd runs resume {name}`")


def runs_resume(
    name: NameArg,
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="key=value for a suspend step's outputs.")
    ] = None,
) -> None:
    """Resume a suspended run, or its suspend steps (like `argo resume`)."""
    from workflows.local import actions

    actions.resume(settings(), name, parse_params(parameter or []))
    console.print(f"{name} resumed")


def runs_retry(name: NameArg, wait_: WaitOpt = False) -> None:
    """Run a Failed run again: its Succeeded steps keep their outputs, the rest run (like `argo retry`)."""
    from workflows.local import actions

    config = settings()
    actions.retry(config, name)
    console.print(f"{name} retried — follow it with `ctcd runs get {name}`")
    if wait_:
        _wait_and_report(config, name, quiet=False)


MemoizedOpt = Annotated[
    bool, typer.Option("--memoized", help="Keep the Succeeded steps of a Failed run; run only the rest (Skipped).")
]


def runs_resubmit(name: NameArg, wait_: WaitOpt = False, memoized: MemoizedOpt = False) -> None:
    """Submit a run's spec again as a new run (like `argo resubmit`); prints the new run's name."""
    from workflows.local import actions

    config = settings()
    fresh = actions.resubmit(config, name, memoized=memoized)["metadata"]["name"]
    print(fresh)
    if wait_:
        _wait_and_report(config, fresh, quiet=True)


def runs_delete(name: NameArg) -> None:
    """Delete a run and its logs (a running run is terminated first), like `argo delete`."""
    from workflows.local import actions

    actions.delete(settings(), name)
    console.print(f"{name} deleted")


def runs_watch(name: NameArg) -> None:
    """Follow a run until it ends, then show its node tree (like `argo watch`)."""
    _load(name)
    _wait_and_report(settings(), name, quiet=False)
