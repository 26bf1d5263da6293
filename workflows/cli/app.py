"""The ``ctcd`` command: a thin layer over the platform, the engine and the compiler.

It mirrors the Argo CLI where one exists (``submit``, ``runs get``, ``runs logs``) so that what users
learn locally carries over to a cluster.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from workflows.settings import REPO_ROOT, SettingError, Settings, get_settings

app = typer.Typer(help="ctcd: continuous training, continuous delivery on Argo.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect workflow runs of the local engine.", no_args_is_help=True)
data_app = typer.Typer(help="Techniques' datasets in S3: seed sample data, add your own files.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
console = Console(width=None if sys.stdout.isatty() else 250)  # piped: whole rows, as kubectl prints them
err_console = Console(stderr=True)

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="Output format: table (default), json, yaml or name.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@app.command()
def up() -> None:
    """Start the embedded platform (S3 on SeaweedFS, MLflow) on 127.0.0.1; safe to run twice."""
    from workflows.local import stack

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
    from workflows.local import runs

    for name in runs.settle_all(settings):
        console.print(f"[yellow]![/] run {name} had lost its engine worker: marked Error (see `ctcd runs get {name}`)")
    with console.status("local serving: starting the pinned revisions…"):
        problem = stack.wait_serving(settings, settings.startup_timeout)
    if problem:
        console.print(f"[yellow]![/] serving is up but not every InferenceService is ready yet: {escape(problem)}")
    console.print(f"platform up in {time.monotonic() - start:.1f}s — state in {settings.state_dir}")


@app.command()
def down() -> None:
    """Stop the embedded platform's processes that `ctcd up` started."""
    from workflows.local import stack

    stopped = stack.down(_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(output: OutputOpt = "table") -> None:
    """Show each service of the embedded platform: URL, pid, state and health."""
    from workflows.local import stack

    rows = stack.status(_settings())
    if output == "json":
        print(json.dumps(rows, indent=2))
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
    if not all(row["healthy"] for row in rows):
        raise typer.Exit(3)


def _parse_params(values: list[str]) -> dict[str, str]:
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"-p {item!r}: use -p key=value")
        params[key] = value
    return params


@app.command()
def submit(
    file: Annotated[str | None, typer.Argument(help="A Workflow or WorkflowTemplate YAML file.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="workflowtemplate/NAME or cronworkflow/NAME.")] = None,
    parameter: Annotated[list[str] | None, typer.Option("--parameter", "-p", help="key=value (repeatable).")] = None,
    wait_: Annotated[
        bool, typer.Option("--wait", "-w", help="Block until the run ends; fail unless it Succeeded.")
    ] = False,
    output: OutputOpt = "table",
    cluster: Annotated[bool, typer.Option("--cluster", help="Submit to the Argo Server (ARGO_SERVER).")] = False,
) -> None:
    """Submit a workflow to the local engine (or, with --cluster, to Argo), like `argo submit`; prints the run id."""
    from workflows.engine.submit import SubmitError
    from workflows.local import runs

    if (file is None) == (from_ is None):
        raise _fail("give either a FILE or --from workflowtemplate/NAME")
    if cluster:
        _submit_to_cluster(from_ or str(file), _parse_params(parameter or []), from_ is not None, output)
        return
    settings = _settings()
    try:
        workflow = runs.submit(settings, from_ or str(file), _parse_params(parameter or []), from_ref=from_ is not None)
    except (SubmitError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    name = workflow["metadata"]["name"]
    if output == "name":
        print(name)
    else:
        console.print(f"submitted [bold]{name}[/] — follow it with `ctcd runs get {name}`")
    if wait_:
        _wait_and_report(settings, name, quiet=output == "name")


def _submit_to_cluster(source: str, params: dict[str, str], from_ref: bool, output: str) -> None:
    import requests

    from workflows.platform import argo

    try:
        name = argo.submit(source, params, from_ref)
    except (argo.ArgoConfigError, requests.RequestException, OSError, ValueError) as exc:
        raise _fail(f"cannot submit to the Argo Server: {exc}") from exc
    if output == "name":
        print(name)
    else:
        console.print(
            f"submitted [bold]{name}[/] to {argo.namespace()}: follow it with `ctcd runs get {name} --cluster`"
        )


def _wait_and_report(settings: Settings, name: str, quiet: bool) -> None:
    from workflows.local import runs

    with console.status(f"{name}: pending…") as spinner:

        def progress(wf: dict[str, Any]) -> None:
            pods = [n for n in wf.get("status", {}).get("nodes", {}).values() if n["type"] == "Pod"]
            running = [n["displayName"] for n in pods if n["phase"] == "Running"]
            done = sum(n["phase"] == "Succeeded" for n in pods)
            spinner.update(f"{name}: {done} step(s) done, running: {', '.join(running) or '-'}")

        workflow = runs.wait(settings, name, None if quiet else progress)
    if not quiet:
        _print_run(workflow)
    if workflow["status"]["phase"] != "Succeeded":
        raise typer.Exit(1)


def _print_run(workflow: dict[str, Any]) -> None:
    from workflows.cli import render

    for key, value in render.summary(workflow):
        console.print(f"[bold]{key + ':':<16}[/] {value}")
    console.print()
    console.print(render.node_tree(workflow))


@runs_app.command("list")
def runs_list(output: OutputOpt = "table") -> None:
    """List runs, newest first, like `argo list`."""
    from workflows.cli import render
    from workflows.engine.store import RunStore

    workflows = RunStore(_settings().state_dir).list()
    if output == "json":
        print(json.dumps(workflows, indent=2))
    elif output == "name":
        print("\n".join(w["metadata"]["name"] for w in workflows))
    else:
        console.print(render.runs_table(workflows))


@runs_app.command("get")
def runs_get(
    name: str,
    output: OutputOpt = "table",
    cluster: Annotated[bool, typer.Option("--cluster", help="Read the run from the Argo Server.")] = False,
) -> None:
    """Show one run as a node tree (like `argo get`); -o json prints the Argo Workflow object."""
    import requests

    from workflows.engine.store import RunStore
    from workflows.platform import argo

    try:
        workflow = argo.get(name) if cluster else RunStore(_settings().state_dir).load(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from exc
    except (argo.ArgoConfigError, requests.RequestException) as exc:
        raise _fail(f"cannot read {name} from the Argo Server: {exc}") from exc
    if output == "json":
        print(json.dumps(workflow, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(workflow, sort_keys=False))
    else:
        _print_run(workflow)


@runs_app.command("logs")
def runs_logs(
    name: str,
    node: Annotated[str | None, typer.Option("--node", help="Only this node (id or display name).")] = None,
) -> None:
    """Print the logs of a run's steps, each line prefixed with its step, like `argo logs`."""
    from workflows.engine.store import RunStore

    store = RunStore(_settings().state_dir)
    try:
        workflow = store.load(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from exc
    pods = [n for n in workflow["status"].get("nodes", {}).values() if n["type"] == "Pod"]
    if node:
        pods = [n for n in pods if node in (n["id"], n["displayName"], n["name"])]
        if not pods:
            raise _fail(f"run {name} has no step {node!r}")
    for pod in sorted(pods, key=lambda n: n.get("startedAt", "")):
        path = store.log_path(name, pod["id"])
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                print(f"{pod['displayName']}: {line}")


@app.command("compile")
def compile_(check: Annotated[bool, typer.Option("--check", help="Fail if committed YAML differs.")] = False) -> None:
    """Compile the Hera templates and each technique's KServe base into gitops/."""
    from workflows import compile as compiler

    if check:
        try:
            problems = compiler.diff()
        except compiler.CompileError as exc:
            raise _fail(str(exc)) from exc
        if problems:
            for problem in problems:
                err_console.print(f"[red]✖[/] {problem}")
            raise _fail("compiled YAML is out of date: run `make compile` and commit the result")
        console.print("[green]✓[/] compiled YAML matches the Hera definitions")
        return
    try:
        paths = compiler.write()
    except compiler.CompileError as exc:
        raise _fail(str(exc)) from exc
    for path in paths:
        console.print(f"wrote {path.relative_to(REPO_ROOT)}")


def _technique(name: str):  # type: ignore[no-untyped-def]
    from models.contract import UnknownTechnique, get

    try:
        return get(name)
    except UnknownTechnique as exc:
        raise _fail(str(exc)) from exc


@data_app.command("seed")
def data_seed(
    techniques: Annotated[list[str] | None, typer.Argument(help="Techniques (default: all).")] = None,
    rows: Annotated[int | None, typer.Option(help="Rows to generate (default: the technique's sample_rows).")] = None,
) -> None:
    """Generate sample data for techniques that have none yet (the first collection freezes the test split)."""
    from models.contract import discover
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets
    from workflows.training.validation import DatasetError

    settings = _settings()
    client = s3_client(settings)
    for name in techniques or sorted(discover()):
        technique = _technique(name)
        listing = client.list_objects_v2(Bucket=settings.datasets_bucket, Prefix=f"{name}/train/", MaxKeys=1)
        if listing.get("KeyCount", 0):
            console.print(f"[dim]{name}: already has data, nothing generated[/]")
            continue
        frame = technique.generate(rows or technique.spec.sample_rows, seed=0, batch=0)
        try:
            keys = datasets.collect(client, settings, technique, f"{name}-sample.csv", datasets.frame_to_csv(frame))
        except DatasetError as exc:
            raise _fail(str(exc)) from exc
        console.print(f"[green]✓[/] {name}: {len(frame)} sample rows -> {', '.join(keys)}")


@data_app.command("add")
def data_add(
    technique: str,
    source: Annotated[str, typer.Argument(help="A local CSV/Parquet file or s3://bucket/key.")],
) -> None:
    """Validate a CSV/Parquet file (local or in S3) and add it to a technique's training data."""
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets
    from workflows.training.validation import DatasetError

    settings = _settings()
    spec = _technique(technique)
    client = s3_client(settings)
    try:
        raw = datasets.read_source(client, source)
        keys = datasets.collect(client, settings, spec, source, raw)
    except DatasetError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"[green]✓[/] {technique}: added {source} -> {', '.join(keys)}")


@data_app.command("ls")
def data_ls(technique: str, output: OutputOpt = "table") -> None:
    """List a technique's files in S3: the test split, each batch (retired ones too), rows, classes, versions."""
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets
    from workflows.training.validation import DatasetError

    settings = _settings()
    spec = _technique(technique)
    try:
        settings.require_reachable("s3")
        listing = datasets.inventory(s3_client(settings), settings, spec)
    except (DatasetError, SettingError) as exc:
        raise _fail(str(exc)) from exc
    if output == "json":
        print(json.dumps(listing, indent=2))
        return
    table = Table("FILE", "ROLE", "ROWS", "CLASSES", "SMALLEST CLASS", title=f"s3://{listing['bucket']}/{technique}/")
    for item in listing["files"]:
        classes = item["classes"]
        smallest = min(classes.items(), key=lambda kv: kv[1]) if classes else ("-", 0)
        table.add_row(
            item["key"].split("/", 1)[1],
            item["role"],
            str(item["rows"]),
            str(len(classes)),
            f"{smallest[0]} ({smallest[1]})",
        )
    console.print(table)
    for version in listing["versions"]:
        console.print(f"dataset version {version['version']}: {len(version['batches'])} batch(es)")


@data_app.command("rm")
def data_rm(technique: str, batch: Annotated[str, typer.Argument(help="batch-0001, batch-0001.csv or 1.")]) -> None:
    """Retire a batch: it leaves the training set (a new dataset version) but stays in S3 as history."""
    from workflows.platform.s3 import s3_client
    from workflows.training import datasets
    from workflows.training.validation import DatasetError

    settings = _settings()
    spec = _technique(technique)
    try:
        settings.require_reachable("s3")
        record = datasets.retire(s3_client(settings), settings, spec, batch)
    except (DatasetError, SettingError) as exc:
        raise _fail(f"cannot retire {batch} of {technique}: {exc}") from exc
    console.print(
        f"[green]✓[/] {technique}: retired {batch} (kept in S3; record {record}); the next run trains without it"
    )


@app.command()
def retrain(
    technique: str,
    wait_: Annotated[bool, typer.Option("--wait", "-w", help="Block until the run ends.")] = False,
    hyperparameters: Annotated[
        str, typer.Option("--hyperparameters", help="JSON over the technique's defaults, e.g. '{\"cv_folds\": 2}'.")
    ] = "{}",
    cluster: Annotated[bool, typer.Option("--cluster", help="On the Argo Server (ARGO_SERVER).")] = False,
) -> None:
    """Retrain a technique now (the admin's button): prints the run id to poll with `ctcd runs get`."""
    from workflows.engine.submit import SubmitError
    from workflows.local import runs

    _technique(technique)
    try:
        if not isinstance(json.loads(hyperparameters), dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise _fail(f"--hyperparameters {hyperparameters!r} must be a JSON object ({exc})") from exc
    parameters = {"technique": technique, "hyperparameters": hyperparameters}
    if cluster:
        _submit_to_cluster("workflowtemplate/train", parameters, True, "name")
        return
    settings = _settings()
    try:
        workflow = runs.submit(settings, "workflowtemplate/train", parameters, from_ref=True)
    except (SubmitError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from exc
    print(workflow["metadata"]["name"])
    if wait_:
        _wait_and_report(settings, workflow["metadata"]["name"], quiet=True)


@app.command()
def models(output: OutputOpt = "table") -> None:
    """Each technique's newest registered version: metric, champion metric and the gate's decision."""
    from models.contract import discover
    from workflows.platform import registry
    from workflows.training.gate import from_tags

    settings = _settings()
    try:
        settings.require_reachable("mlflow")
    except SettingError as exc:
        raise _fail(str(exc)) from exc
    client = registry.client(settings.mlflow_tracking_uri)
    rows = []
    for name, technique in sorted(discover().items()):
        version = registry.latest(client, name)
        champ = registry.champion(client, name)
        gate = from_tags(version.tags) if version else {}
        rows.append(
            {
                "technique": name,
                "version": version.version if version else "-",
                "metric": technique.spec.metric.name,
                "challenger": gate.get("challenger", "-"),
                "champion_metric": gate.get("champion") or "-",
                "decision": gate.get("decision", "-"),
                "champion": champ.version if champ else "-",
                "reason": gate.get("reason", ""),
            }
        )
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table("TECHNIQUE", "VERSION", "METRIC", "VALUE", "CHAMPION METRIC", "DECISION", "CHAMPION NOW", "WHY")
    for r in rows:
        colour = "green" if r["decision"] == "better" else "yellow"
        table.add_row(
            r["technique"],
            f"v{r['version']}",
            r["metric"],
            _fmt(r["challenger"]),
            _fmt(r["champion_metric"]),
            f"[{colour}]{r['decision']}[/]",
            f"v{r['champion']}",
            r["reason"],
        )
    console.print(table)


def _fmt(value: str) -> str:
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value


get_app = typer.Typer(help="Show serving objects, like `kubectl get`.", no_args_is_help=True)
app.add_typer(get_app, name="get")


@app.command()
def promote(
    technique: str,
    version: str,
    env: Annotated[str, typer.Option(help="staging or production.")] = "staging",
    strategy: Annotated[str, typer.Option(help="canary, full or ab.")] = "canary",
    percent: Annotated[int, typer.Option(help="Canary traffic percent.")] = 20,
    b_version: Annotated[str | None, typer.Option(help="The B version for --strategy ab.")] = None,
    weights: Annotated[str, typer.Option(help="A/B weights, e.g. 50,50.")] = "50,50",
    to_main: Annotated[bool | None, typer.Option("--to-main/--branch", help="Default: per CTCD_AUTO_MERGE.")] = None,
) -> None:
    """Pin a registered version in an environment through a git commit (canary by default)."""
    from mlflow.exceptions import MlflowException

    from workflows.delivery import overlays, promotion
    from workflows.platform import registry
    from workflows.platform.gitrepo import GitError

    settings = _settings()
    _technique(technique)
    try:
        settings.require_reachable("mlflow")
        client = registry.client(settings.mlflow_tracking_uri)
        desired = promotion.from_registry(
            client, settings.artifacts_bucket, technique, version, env, strategy, percent, b_version or "", weights
        )
        direct = settings.merges_by_itself(env) if to_main is None else to_main
        result = promotion.promote(settings.git_remote, settings.git_branch, desired, {"Source": "cli"}, to_main=direct)
    except (overlays.GitopsError, GitError, ValueError, MlflowException, SettingError) as exc:
        raise _fail(f"cannot promote {technique} v{version}: {exc}") from exc
    state = "merged into " + settings.git_branch if result.merged else f"waiting on branch {result.branch}"
    note = "" if result.changed else " (already there: nothing new committed)"
    console.print(f"[green]✓[/] {technique} v{version} → {env}: commit {result.commit[:12]}, {state}{note}")


@app.command()
def merge(
    branch: str,
    force: Annotated[bool, typer.Option("--force", help="Merge even a stale branch (older than the pin).")] = False,
) -> None:
    """Merge a promotion branch on the GitOps remote, like a pull request's merge button (stale ones refused)."""
    from workflows.delivery import promotion
    from workflows.platform.gitrepo import GitError

    settings = _settings()
    try:
        commit = promotion.merge(settings.git_remote, settings.git_branch, branch, force=force)
    except GitError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"[green]✓[/] merged {branch} into {settings.git_branch}: {commit[:12]}")


@app.command()
def rollback(
    technique: str,
    env: Annotated[str, typer.Option(help="staging or production.")] = "staging",
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", help="A revision of `ctcd history` (default: the one before).")
    ] = None,
) -> None:
    """Serve an earlier model again: a new commit pinning it (like `kubectl rollout undo`), never a revert."""
    from workflows.delivery import promotion
    from workflows.delivery.overlays import GitopsError
    from workflows.platform.gitrepo import GitError

    settings = _settings()
    try:
        result = promotion.rollback(settings.git_remote, settings.git_branch, technique, env, to_revision)
    except (GitError, GitopsError) as exc:
        raise _fail(str(exc)) from exc
    note = "" if result.changed else " (already serving it: nothing committed)"
    console.print(f"[green]✓[/] rolled back {technique} in {env}: commit {result.commit[:12]}{note}")


@app.command()
def rollout(technique: str, env: Annotated[str, typer.Option(help="staging or production.")] = "staging") -> None:
    """End a canary: send 100% to the new version (removes canaryTrafficPercent)."""
    from workflows.delivery import overlays, promotion
    from workflows.platform.gitrepo import GitError

    settings = _settings()
    try:
        result = promotion.rollout(settings.git_remote, settings.git_branch, technique, env)
    except (overlays.GitopsError, GitError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"[green]✓[/] {technique} rolled out to 100% in {env}: {result.commit[:12]}")


@app.command()
def history(
    technique: str,
    env: Annotated[str | None, typer.Option(help="staging or production (default: both).")] = None,
    output: OutputOpt = "table",
) -> None:
    """Each promotion of a technique, from the commit trailers on main: the ledger `rollback` walks."""
    from workflows.delivery import ledger, overlays
    from workflows.platform.gitrepo import GitError

    settings = _settings()
    _technique(technique)
    environments = [env] if env else list(overlays.ENVIRONMENTS)
    try:
        found = {e: ledger.history(settings.git_remote, settings.git_branch, technique, e) for e in environments}
    except (GitError, overlays.GitopsError) as exc:
        raise _fail(str(exc)) from exc
    if output == "json":
        print(json.dumps({e: [x.as_json() for x in entries] for e, entries in found.items()}, indent=2))
        return
    for environment, entries in found.items():
        table = Table(
            "REVISION",
            "TIME",
            "VERSION",
            "TRAFFIC",
            "RUN",
            "DATASET",
            "METRIC",
            "SOURCE",
            "COMMIT",
            "NOTE",
            title=f"{technique} in {environment}",
        )
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
        console.print(table)


@get_app.command("isvc")
def get_isvc(
    name: Annotated[str | None, typer.Argument()] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace (default: staging's, ctcd-staging).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every environment.")] = False,
    output: OutputOpt = "table",
) -> None:
    """InferenceServices served locally, with the flags and columns of `kubectl get isvc`."""
    from workflows.cli import render
    from workflows.delivery import observed, overlays
    from workflows.local import stack

    settings = _settings()
    wanted = None if all_namespaces else (namespace or overlays.NAMESPACE["staging"])
    items = [i for i in stack.served(settings) if wanted in (None, i["metadata"].get("namespace"))]
    items = [i for i in items if name in (None, i["metadata"]["name"])]
    observed.annotate(settings, items)
    if name and not items:
        where = "" if all_namespaces else f" in namespace {wanted}"
        raise _fail(f'inferenceservices "{name}" not found{where} (all environments: `ctcd get isvc -A`)')
    if output in ("yaml", "json"):
        import yaml

        body = items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
        print(json.dumps(body, indent=2) if output == "json" else yaml.safe_dump(body, sort_keys=False))
        return
    console.print(render.isvc_table(items, namespaces=all_namespaces))
    for line in render.delivery_notes(items):
        console.print(escape(line))


serving_app = typer.Typer(help="Local serving (the stand-in for Argo CD + KServe).", no_args_is_help=True)
app.add_typer(serving_app, name="serving")


@serving_app.command("wait")
def serving_wait(timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 180.0) -> None:
    """Wait until local serving runs the main branch's commit and every InferenceService is Ready."""
    from workflows.delivery import observed

    settings = _settings()
    path = settings.state_dir / "serving" / "status.json"
    commit = observed.head(settings)
    start = time.monotonic()
    with console.status("waiting for local serving to converge…"):
        while time.monotonic() - start < timeout:
            status = json.loads(path.read_text()) if path.exists() else {}
            items = status.get("items", [])
            ready = [i for i in items if i["status"]["conditions"][0]["status"] == "True"]
            if status.get("commit") == commit and len(ready) == len(items):
                console.print(
                    f"[green]✓[/] serving {commit[:12]}: {len(items)} InferenceService(s) ready "
                    f"after {time.monotonic() - start:.1f}s"
                )
                return
            time.sleep(0.5)
    raise _fail(f"local serving did not converge on {commit[:12]} within {timeout:.0f}s; see `ctcd get isvc`")


@app.command()
def predict(
    name: str,
    instances: Annotated[str | None, typer.Option(help="JSON list of instances (default: generated examples).")] = None,
    count: Annotated[int, typer.Option(help="How many generated examples.")] = 3,
    env: Annotated[str, typer.Option(help="staging or production.")] = "staging",
) -> None:
    """Send a v1 prediction through the local gateway and print what came back (and from which revision)."""
    import httpx

    from workflows.delivery import overlays

    settings = _settings()
    if env not in overlays.NAMESPACE:
        raise _fail(f"--env {env!r} must be one of {', '.join(overlays.NAMESPACE)}")
    if instances is None:
        technique = _technique(name.removesuffix("-ab").removesuffix("-b"))
        frame = technique.generate(count, seed=99, batch=0)[technique.spec.feature_columns()]
        rows = json.loads(frame.to_json(orient="records"))
    else:
        rows = json.loads(instances)
    try:
        url = f"{settings.gateway_url}/namespaces/{overlays.NAMESPACE[env]}/v1/models/{name}:predict"
        reply = httpx.post(url, json={"instances": rows}, timeout=30)
    except httpx.HTTPError as exc:
        raise _fail(f"the gateway at {settings.gateway_url} is not reachable ({exc}); run `ctcd up`") from exc
    if reply.status_code != 200:
        raise _fail(f"{reply.status_code}: {reply.text}")
    table = Table("INPUT", "LABEL", "CONFIDENCE", "REVISION", title=f"{name} in {env} via {settings.gateway_url}")
    for row, prediction in zip(rows, reply.json()["predictions"], strict=True):
        shown = row.get("text") if isinstance(row, dict) and "text" in row else json.dumps(row)[:70]
        table.add_row(
            str(shown)[:70],
            str(prediction["label"]),
            f"{prediction['confidence']:.3f}",
            reply.headers.get("x-ctcd-revision", "-"),
        )
    console.print(table)


def _settings() -> Settings:
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


if __name__ == "__main__":
    main()
