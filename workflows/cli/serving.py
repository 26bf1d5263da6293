"""``ctcd get isvc``, ``get ig``, ``serving wait``, ``predict``: what local serving runs, in KServe's shape."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from serving import shared
from workflows.cli.output import Output, OutputOpt, console, print_json, print_yaml, settings, technique_named
from workflows.errors import CtcdError

NameArg = Annotated[str | None, typer.Argument()]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: staging's, ctcd-staging).")
]
AllOpt = Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every environment.")]


def _select(items: list[dict[str, Any]], name: str | None, namespace: str | None, every: bool, kind: str) -> Any:
    """The objects ``kubectl get KIND [NAME] [-n NS | -A]`` shows: one object when named, else a List.

    Raises:
        CtcdError: A named object is not there (the hint shows how to look in every environment).
    """
    from workflows.delivery import overlays

    wanted = None if every else (namespace or overlays.NAMESPACE["staging"])
    items = [i for i in items if wanted in (None, i["metadata"].get("namespace"))]
    items = [i for i in items if name in (None, i["metadata"]["name"])]
    if name and not items:
        where = "" if every else f" in namespace {wanted}"
        short = {"inferenceservices": "isvc", "inferencegraphs": "ig"}[kind]
        raise CtcdError(f'{kind} "{name}" not found{where}', hint=f"all environments: `ctcd get {short} -A`")
    return items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}


def _emit(body: Any, output: str) -> bool:
    """Print ``-o json|yaml``; False when the caller prints its table."""
    if output == "json":
        print_json(body)
    elif output == "yaml":
        print_yaml(body)
    return output in ("json", "yaml")


def get_isvc(
    name: NameArg = None,
    namespace: NamespaceOpt = None,
    all_namespaces: AllOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """InferenceServices served locally, with the flags and columns of `kubectl get isvc`."""
    from workflows.cli import render
    from workflows.delivery import observed
    from workflows.local import stack

    config = settings()
    served = stack.served(config)
    observed.annotate(config, served)
    body = _select(served, name, namespace, all_namespaces, "inferenceservices")
    if not _emit(body, output):
        items = [body] if name else body["items"]
        console.print(render.isvc_table(items, namespaces=all_namespaces))
        for line in [*render.delivery_notes(items), *pending_notes(config)]:
            console.print(escape(line))


def pending_notes(config: Any) -> list[str]:
    """One line per promotion that waits for a merge (the registry's ``ctcd.pending``)."""
    from workflows.delivery import bridge

    waiting = bridge.pending_branches(config.git_remote)
    return [
        f"pending: {technique} v{version}: {note}"
        for technique, versions in sorted(waiting.items())
        for version, note in sorted(versions.items())
    ]


def get_ig(
    name: NameArg = None,
    namespace: NamespaceOpt = None,
    all_namespaces: AllOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """InferenceGraphs served locally (a task's split and channels, a technique's A/B), like `kubectl get ig`."""
    from workflows.cli import render
    from workflows.local import stack

    body = _select(stack.served_graphs(settings()), name, namespace, all_namespaces, "inferencegraphs")
    if not _emit(body, output):
        console.print(render.ig_table([body] if name else body["items"], namespaces=all_namespaces))


def serving_wait(timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 180.0) -> None:
    """Wait until local serving runs the main branch's commit and every InferenceService is Ready."""
    from workflows.delivery import observed

    config = settings()
    path = shared.status_path(config.state_dir)
    commit = observed.head(config)
    start = time.monotonic()
    with console.status("waiting for local serving to converge…"):
        while time.monotonic() - start < timeout:
            items = _converged(path, commit)
            if items is not None:
                console.print(
                    f"[green]✓[/] serving {commit[:12]}: {len(items)} InferenceService(s) ready "
                    f"after {time.monotonic() - start:.1f}s"
                )
                return
            time.sleep(0.5)
    raise CtcdError(
        f"local serving did not converge on {commit[:12]} within {timeout:.0f}s", hint="see `ctcd get isvc`"
    )


def _converged(path: Path, commit: str) -> list[dict[str, Any]] | None:
    """Serving's InferenceServices once it serves ``commit`` and every one is Ready, else None."""
    try:
        status = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:  # serving is rewriting it
        return None
    items: list[dict[str, Any]] = status.get("items", [])
    ready = [i for i in items if i["status"]["conditions"][0]["status"] == "True"]
    return items if status.get("commit") == commit and len(ready) == len(items) else None


def predict(
    name: str,
    instances: Annotated[str | None, typer.Option(help="JSON list of instances (default: generated examples).")] = None,
    count: Annotated[int, typer.Option(help="How many generated examples.")] = 3,
    env: Annotated[str, typer.Option(help="staging or production.")] = "staging",
) -> None:
    """Send a v1 prediction through the local gateway and print what came back (and from which revision)."""
    import httpx

    from workflows.delivery import overlays

    config = settings()
    if env not in overlays.NAMESPACE:
        raise CtcdError(f"--env {env!r} must be one of {', '.join(overlays.NAMESPACE)}")
    rows = _instances(name, instances, count)
    try:
        url = f"{config.gateway_url}/namespaces/{overlays.NAMESPACE[env]}/v1/models/{name}:predict"
        reply = httpx.post(url, json={"instances": rows}, timeout=30)
    except httpx.HTTPError as exc:
        raise CtcdError(f"the gateway at {config.gateway_url} is not reachable ({exc})", hint="run `ctcd up`") from exc
    if reply.status_code != 200:
        raise CtcdError(f"{reply.status_code}: {reply.text}")
    table = Table(
        "INPUT", "LABEL", "CONFIDENCE", "REVISION", "MODEL", title=f"{name} in {env} via {config.gateway_url}"
    )
    version, run = reply.headers.get("x-ctcd-model-version", "?"), reply.headers.get("x-ctcd-run-id", "")
    for row, prediction in zip(rows, reply.json()["predictions"], strict=True):
        shown = row.get("text") if isinstance(row, dict) and "text" in row else json.dumps(row)[:70]
        table.add_row(
            str(shown)[:70],
            str(prediction["label"]),
            f"{prediction['confidence']:.3f}",
            reply.headers.get("x-ctcd-revision", "-"),
            f"v{version}" + (f" (run {run[:8]})" if run else ""),
        )
    console.print(table)


def _instances(name: str, given: str | None, count: int) -> list[Any]:
    """The instances to send: ``--instances`` parsed, or examples the technique generates."""
    if given is None:
        technique = technique_named(name.removesuffix("-ab").removesuffix("-b"))
        frame = technique.generate(count, seed=99, batch=0)[technique.spec.feature_columns()]
        return list(json.loads(frame.to_json(orient="records")))
    try:
        rows = json.loads(given)
    except ValueError as exc:
        raise CtcdError(f"--instances is not JSON ({exc})", hint='give a list, e.g. \'[{"text": "hello"}]\'') from exc
    if not isinstance(rows, list):
        raise CtcdError("--instances must be a JSON list of instances", hint='e.g. \'[{"text": "hello"}]\'')
    return rows
