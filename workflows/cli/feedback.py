"""``ctcd handoff ls`` and ``ctcd feedback add``: production's questions come back as labels."""

from __future__ import annotations

import csv
import io
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from workflows.cli.output import Output, OutputOpt, console, print_json, settings
from workflows.errors import CtcdError

EnvOpt = Annotated[str, typer.Option("--env", help="staging or production.")]


def handoff_ls(task: str, env: EnvOpt = "production", output: OutputOpt = Output.table) -> None:
    """List the questions a task handed off to a person, with each one's best candidate (from the prediction log)."""
    from workflows.delivery.overlays import NAMESPACE
    from workflows.platform.s3 import s3_client
    from workflows.training import feedback

    config = settings()
    if env not in NAMESPACE:
        raise CtcdError(f"--env {env!r} must be one of {', '.join(NAMESPACE)}")
    config.require_reachable("s3")
    rows = feedback.handoffs(s3_client(config), config.predictions_bucket, task, NAMESPACE[env])
    if output == "json":
        print_json(rows)
        return
    table = Table(
        "REQUEST", "TIME", "SERVICE", "INPUT", "CANDIDATE", "CONFIDENCE", title=f"{task}: handed off in {env}"
    )
    for row in rows:
        table.add_row(
            row["request_id"], row["time"], row["service"], escape(row["input"][:70]), row["candidate"],
            f"{row['confidence']:.3f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} question(s); confirm labels with `ctcd feedback add {task} FILE` (request_id,label)")


def feedback_add(
    task: str, file: Annotated[typer.FileText, typer.Argument(help="A CSV with the columns request_id,label.")]
) -> None:
    """Add confirmed labels by request id; the monthly collection takes them as training data (source feedback)."""
    from workflows.platform.s3 import s3_client
    from workflows.training import feedback

    config = settings()
    rows = list(csv.DictReader(io.StringIO(file.read().removeprefix("\ufeff"))))
    if rows and set(rows[0]) != {"request_id", "label"}:
        raise CtcdError(f"{file.name}: columns {', '.join(rows[0])}; give exactly request_id,label")
    config.require_reachable("s3")
    key, count = feedback.add(s3_client(config), config, task, [(r["request_id"], r["label"]) for r in rows])
    console.print(f"[green]✓[/] {count} confirmed label(s) of {task} -> s3://{config.predictions_bucket}/{key}")


def readout(
    name: Annotated[str, typer.Argument(help="A task (its techniques are the arms) or a technique (its versions).")],
    env: EnvOpt = "production",
    since: Annotated[int, typer.Option("--since", help="Days of the prediction log to read.")] = 31,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the readout to MLflow (a run with a chart).")] = True,
    output: OutputOpt = Output.table,
) -> None:
    """How each arm answers: traffic, errors, latency, hand-offs, accuracy on confirmed labels (always-valid 95%)."""
    from workflows.delivery import readout as figures
    from workflows.delivery.overlays import NAMESPACE
    from workflows.platform.s3 import s3_client

    config = settings()
    if env not in NAMESPACE:
        raise CtcdError(f"--env {env!r} must be one of {', '.join(NAMESPACE)}")
    config.require_reachable("s3")
    found = figures.arms(s3_client(config), config, name, NAMESPACE[env], since)
    if log:
        from workflows.delivery import readout_run

        config.require_reachable("mlflow")
        found["mlflow_run_id"] = readout_run.log(config.mlflow_tracking_uri, found)
    if output == "json":
        print_json(found)
        return
    table = Table("ARM", "REQUESTS", "5XX", "P50 MS", "P99 MS", "HAND-OFF", "CONFIDENCE", "LABEL SHIFT", "LABELLED",
                  "ACCURACY (95% CS)", title=f"{name} in {env}")  # fmt: skip
    for arm in found["arms"]:
        table.add_row(
            f"{arm['service']} v{arm['model_version']}", str(arm["requests"]), f"{arm['errors_5xx']:.1%}",
            f"{arm['p50_ms']:.1f}", f"{arm['p99_ms']:.1f}", f"{arm['handoff_rate']:.1%}",
            f"{arm['mean_confidence']:.3f}", f"{arm['label_shift']:.3f}", str(arm["labelled"]),
            f"{arm['accuracy']:.3f} [{arm['accuracy_low']:.3f}, {arm['accuracy_high']:.3f}]",
        )  # fmt: skip
    console.print(table)
    for gap in found["differences"]:
        verdict = "decided" if gap["decided"] else f"{gap['more_labelled_rows_needed']} more labelled rows per arm"
        console.print(
            f"{gap['arm']} - {gap['against']}: accuracy {gap['accuracy_difference']:+.3f} "
            f"[{gap['low']:+.3f}, {gap['high']:+.3f}]: {verdict}"
        )
    if found.get("mlflow_run_id"):
        console.print(f"logged to MLflow: run {found['mlflow_run_id']} (readout.png) in experiment {found['task']}")


def analyze(
    technique: Annotated[str | None, typer.Argument(help="One technique (default: every technique).")] = None,
    env: EnvOpt = "staging",
    output: OutputOpt = Output.table,
) -> None:
    """One round of canary analysis: a live canary steps up, rolls out or rolls back by a commit, or stays."""
    from dataclasses import asdict

    from models.contract import discover
    from workflows.delivery import canary
    from workflows.platform.s3 import s3_client

    config = settings()
    config.require_reachable("s3")
    config.require_reachable("mlflow")
    client = s3_client(config)
    rounds = [canary.run(config, client, name, env) for name in ([technique] if technique else sorted(discover()))]
    if output == "json":
        print_json([asdict(r) for r in rounds])
        return
    canary.announce(config, rounds)
    for done in rounds:
        commit = f" (commit {done.commit[:12]})" if done.commit else ""
        console.print(f"{done.technique} in {done.environment}: {done.decision}: {done.action}{commit}")
        if done.evidence:
            console.print(f"  {escape(done.evidence)}")
