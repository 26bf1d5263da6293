"""``ctcd models``: each technique's newest registered version and what the gate decided about it."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from workflows.cli.output import OutputOpt, console, number, print_json, settings


def models(output: OutputOpt = "table") -> None:
    """Each technique's newest registered version: metric, champion metric and the gate's decision."""
    from models.contract import discover
    from workflows.platform import registry

    config = settings()
    config.require_reachable("mlflow")
    client = registry.client(config.mlflow_tracking_uri)
    rows = [_row(client, name, technique) for name, technique in sorted(discover().items())]
    if output == "json":
        print_json(rows)
        return
    table = Table("TECHNIQUE", "VERSION", "METRIC", "VALUE", "CHAMPION METRIC", "DECISION", "CHAMPION NOW", "WHY")
    for r in rows:
        colour = "green" if r["decision"] == "better" else "yellow"
        table.add_row(
            r["technique"],
            f"v{r['version']}",
            r["metric"],
            number(r["challenger"]),
            number(r["champion_metric"]),
            f"[{colour}]{r['decision']}[/]",
            f"v{r['champion']}",
            r["reason"],
        )
    console.print(table)


def _row(client: Any, name: str, technique: Any) -> dict[str, str]:
    from workflows.platform import registry
    from workflows.training.gate import from_tags

    version = registry.latest(client, name)
    champ = registry.champion(client, name)
    gate = from_tags(version.tags) if version else {}
    return {
        "technique": name,
        "version": version.version if version else "-",
        "metric": technique.spec.metric.name,
        "challenger": gate.get("challenger", "-"),
        "champion_metric": gate.get("champion") or "-",
        "decision": gate.get("decision", "-"),
        "champion": champ.version if champ else "-",
        "reason": gate.get("reason", ""),
    }
