"""Terminal views of runs, in the shape ``argo list`` and ``argo get`` print them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from serving import shared

ICONS = {
    "Succeeded": "[green]✔[/]",
    "Failed": "[red]✖[/]",
    "Error": "[red]⚠[/]",
    "Skipped": "[dim]○[/]",
    "Omitted": "[dim]○[/]",
    "Running": "[yellow]●[/]",
    "Pending": "[dim]◷[/]",
}


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(stamp, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def duration(item: dict[str, Any]) -> str:
    """Human duration between ``startedAt`` and ``finishedAt`` (or now)."""
    start = _parse(item.get("startedAt"))
    if start is None:
        return "-"
    end = _parse(item.get("finishedAt")) or datetime.now(UTC)
    seconds = (end - start).total_seconds()
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def age(stamp: str | None) -> str:
    """How long ago a timestamp was, like kubectl's AGE column."""
    when = _parse(stamp)
    if when is None:
        return "-"
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def runs_table(workflows: list[dict[str, Any]]) -> Table:
    """The ``argo list`` view."""
    table = Table("NAME", "STATUS", "AGE", "DURATION", "PROGRESS", "FROM")
    for wf in workflows:
        status = wf.get("status", {})
        labels = wf["metadata"].get("labels", {})
        origin = next(iter(labels.values()), "file")
        table.add_row(
            wf["metadata"]["name"],
            status.get("phase", "-"),
            age(wf["metadata"].get("creationTimestamp")),
            duration(status),
            status.get("progress", "-"),
            origin,
        )
    return table


def _children(node: dict[str, Any], nodes: dict[str, dict[str, Any]], grouped: set[str]) -> list[dict[str, Any]]:
    if node["type"] in ("DAG", "Steps"):
        inner = [n for n in nodes.values() if n.get("boundaryID") == node["id"] and n["id"] not in grouped]
        if node["type"] == "Steps":
            inner = [n for n in inner if n["type"] == "StepGroup"]
        return sorted(inner, key=lambda n: (n.get("startedAt", ""), n["name"]))
    return [
        nodes[c] for c in node.get("children", []) if c in nodes and node["type"] in ("StepGroup", "Retry", "TaskGroup")
    ]


def node_tree(workflow: dict[str, Any]) -> Table:
    """The ``argo get`` node tree: step, template, pod name, duration and message."""
    nodes: dict[str, dict[str, Any]] = workflow.get("status", {}).get("nodes", {})
    grouped = {c for n in nodes.values() if n["type"] in ("Retry", "TaskGroup", "StepGroup") for c in n["children"]}
    table = Table("STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE", box=None)
    roots = [n for n in nodes.values() if "boundaryID" not in n and n["id"] not in grouped]

    def walk(node: dict[str, Any], prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─" if last else "├─")
        icon = ICONS.get(node["phase"], "?")
        pod = node["id"] if node["type"] == "Pod" else ""
        table.add_row(
            f"{prefix}{branch}{icon} {node['displayName']}",
            node.get("templateName", ""),
            pod,
            duration(node) if node["type"] == "Pod" else "",
            node.get("message", ""),
        )
        kids = _children(node, nodes, grouped)
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("" if depth == 0 else ("  " if last else "│ ")), i == len(kids) - 1, depth + 1)

    for root in sorted(roots, key=lambda n: n.get("startedAt", "")):
        walk(root, " ", True, 0)
    return table


def _cached(status: dict[str, Any]) -> str:
    hits = sorted(
        n["displayName"] for n in status.get("nodes", {}).values() if n.get("memoizationStatus", {}).get("hit")
    )
    return f"{len(hits)} step(s) reused from the memoization cache: {', '.join(hits)}" if hits else ""


def summary(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """The header lines of ``argo get``."""
    status = workflow.get("status", {})
    params = (workflow["spec"].get("arguments") or {}).get("parameters", [])
    rows = [
        ("Name", workflow["metadata"]["name"]),
        ("Status", status.get("phase", "-")),
        ("Message", status.get("message", "")),
        ("Created", workflow["metadata"].get("creationTimestamp", "")),
        ("Duration", duration(status)),
        ("Progress", status.get("progress", "-")),
        ("Cached", _cached(status)),
    ]
    rows += [(f"  {p['name']}", str(p.get("value", ""))) for p in params]
    return [(k, v) for k, v in rows if v]


def isvc_table(items: list[dict[str, Any]], namespaces: bool = False) -> Table:
    """The ``kubectl get isvc`` view, with NAMESPACE first for ``-A`` as kubectl shows it.

    Columns: NAME URL READY PREV LATEST PREVROLLEDOUTREVISION LATESTREADYREVISION AGE, then ctcd's MODEL (the
    registry versions answering, with their traffic), SYNC and HEALTH.
    """
    columns = ["NAME", "URL", "READY", "PREV", "LATEST", "PREVROLLEDOUTREVISION", "LATESTREADYREVISION", "AGE"]
    columns += ["MODEL", "SYNC", "HEALTH"]
    table = Table(*(["NAMESPACE"] if namespaces else []), *columns, box=None)
    for item in items:
        status = item.get("status", {})
        predictor = status.get("components", {}).get("predictor", {})
        split = predictor.get("traffic", [])
        ready = next((c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "Unknown")
        prev: dict[str, Any] = next((t for t in split if t.get("tag") == "prev"), {})
        latest: dict[str, Any] = next((t for t in split if t.get("latestRevision")), {})
        table.add_row(
            *([item["metadata"].get("namespace", "")] if namespaces else []),
            item["metadata"]["name"],
            status.get("url", ""),
            ready,
            str(prev.get("percent", "")),
            str(latest.get("percent", "")),
            prev.get("revisionName", ""),
            predictor.get("latestReadyRevision", ""),
            age(item["metadata"].get("creationTimestamp")),
            _model(item),
            *_delivery_cells(status.get("delivery", {})),
        )
    return table


def _model(item: dict[str, Any]) -> str:
    """``v3 20%, v2 80% (run 1a2b3c4d)``: the registry versions that answer, and the newest one's training run."""
    notes = item["metadata"].get("annotations", {})
    run = notes.get(shared.RUN_ID, "")
    return (notes.get(shared.SERVING, "") or "-") + (f" (run {run[:8]})" if run else "")


def _routes(graph: dict[str, Any]) -> str:
    """``chat→intent-spacy, intent-classifier 70%, intent-spacy 30%``: where a graph sends requests."""
    parts = []
    for node in graph["spec"]["nodes"].values():
        for step in node.get("steps", []):
            if node.get("routerType") == "Switch" and step.get("serviceName"):
                parts.append(f"{step.get('name', '?')}→{step['serviceName']}")
            elif node.get("routerType") == "Splitter":
                parts.append(f"{step.get('serviceName') or step.get('nodeName')} {step.get('weight', 0)}%")
    return ", ".join(parts)


def ig_table(items: list[dict[str, Any]], namespaces: bool = False) -> Table:
    """The ``kubectl get ig`` view (NAME URL READY) with where each graph routes."""
    table = Table(*(["NAMESPACE"] if namespaces else []), "NAME", "URL", "READY", "ROUTES", box=None)
    for item in items:
        ready: dict[str, Any] = next((c for c in item["status"].get("conditions", []) if c["type"] == "Ready"), {})
        table.add_row(
            *([item["metadata"]["namespace"]] if namespaces else []),
            item["metadata"]["name"],
            item["status"].get("url", ""),
            ready.get("status", "Unknown") + (f" ({ready['message']})" if ready.get("message") else ""),
            _routes(item),
        )
    return table


def _delivery_cells(delivery: dict[str, Any]) -> list[str]:
    return [delivery.get("sync", ""), delivery.get("health", "")]


def delivery_notes(items: list[dict[str, Any]]) -> list[str]:
    """Lines under the table: why a service is not Synced and Healthy, and promotions the ledger flags."""
    commits = {str(i.get("status", {}).get("delivery", {}).get("commit", "")) for i in items}
    notes = [f"serving commit {c[:12] or '-'}" for c in sorted(commits)]
    for item in items:
        delivery = item.get("status", {}).get("delivery", {})
        where = f"{item['metadata'].get('namespace', '')}/{item['metadata']['name']}"
        if delivery.get("reason"):
            notes.append(f"{where}: {delivery.get('sync')}/{delivery.get('health')}: {delivery['reason']}")
        if delivery.get("flag"):
            notes.append(f"{where}: flagged: {delivery['flag']} (see `ctcd history {item['metadata']['name']}`)")
    return notes
