"""``ctcd models``: each technique's newest registered version, what the gate decided, and each task's leader.

Techniques of one task are scored on the same frozen test split, so their champions' test metrics compare
directly: the task's leader is the technique whose champion scores best.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from workflows.cli.output import Output, OutputOpt, console, number, print_json, settings


def models(output: OutputOpt = Output.table) -> None:
    """Each technique's newest registered version: metric, champion metric and the gate's decision."""
    from models.contract import discover
    from workflows.platform import registry

    config = settings()
    config.require_reachable("mlflow")
    client = registry.client(config.mlflow_tracking_uri)
    rows = leaders([_row(client, name, technique) for name, technique in sorted(discover().items())])
    if output == "json":
        print_json(rows)
        return
    table = Table(
        "TECHNIQUE", "TASK", "VERSION", "METRIC", "VALUE", "CHAMPION METRIC", "DECISION", "CHAMPION NOW", "WHY"
    )
    for r in rows:
        colour = "green" if r["decision"] == "better" else "yellow"
        table.add_row(
            r["technique"],
            r["task"] + (" [bold](leads)[/]" if r["leads"] else ""),
            f"v{r['version']}",
            r["metric"],
            number(r["challenger"]),
            number(r["champion_metric"]),
            f"[{colour}]{r['decision']}[/]",
            f"v{r['champion']}",
            r["reason"],
        )
    console.print(table)


def leaders(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark each task's leader: the technique whose champion has the best test metric (tasks of one technique too)."""
    from workflows.training.gate import leader

    for row in rows:
        scores = {r["technique"]: r["champion_value"] for r in rows if r["task"] == row["task"]}
        row["leads"] = leader({k: v for k, v in scores.items() if v is not None}, row["direction"]) == row["technique"]
    return rows


def _row(client: Any, name: str, technique: Any) -> dict[str, Any]:
    from workflows.platform import registry
    from workflows.training.gate import from_tags

    version = registry.latest(client, name)
    champ = registry.champion(client, name)
    gate = from_tags(version.tags) if version else {}
    held = from_tags(champ.tags).get("challenger") if champ else None
    return {
        "technique": name,
        "task": technique.dataset,
        "direction": technique.spec.metric.direction,
        "champion_value": float(held) if held else None,
        "version": version.version if version else "-",
        "metric": technique.spec.metric.name,
        "challenger": gate.get("challenger", "-"),
        "champion_metric": gate.get("champion") or "-",
        "decision": gate.get("decision", "-"),
        "champion": champ.version if champ else "-",
        "reason": gate.get("reason", ""),
    }
