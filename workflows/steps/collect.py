"""Steps of the continuous-training workflow: collect a batch, check it for drift, and notify.

No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import json
import logging
from typing import Annotated

from hera.workflows import Input, Output, Parameter

from workflows.platform import mlflow_tags
from workflows.steps.common import RETRY, fail, require, step

_logger = logging.getLogger(__name__)


class CollectInput(Input):
    """Where new rows come from."""

    technique: str
    source: str = "generator"
    rows: int = 500
    location: str = ""


class CollectOutput(Output):
    """How many new rows were added, and which month this was."""

    new_rows: Annotated[int, Parameter(name="new-rows")]
    month: Annotated[int, Parameter(name="month")]


class DriftInput(Input):
    """The technique whose newest batch is compared with the rest of its training data."""

    technique: str
    month: int


class NotifyInput(Input):
    """What the exit handler knows: the run, its status and failures.

    ``when_idle`` is ``log`` for runs that may end with nothing to report (a collection that found nothing new):
    a successful run that registered no model then writes a log line instead of a message.
    """

    workflow_name: str
    status: str
    failures: str = "[]"
    technique: str = ""
    when_idle: str = "notify"


@step(retry_strategy=RETRY)
def collect(inputs: CollectInput) -> CollectOutput:
    """Collect, validate and de-duplicate new rows; append them as a batch (nothing new: nothing written)."""
    from models.contract import get
    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings
    from workflows.training.collection import collect as run_collection
    from workflows.training.validation import DatasetError

    settings = get_settings()
    require(settings, ("s3",), "collection not started: ")
    try:
        found = run_collection(
            s3_client(settings), settings, get(inputs.technique), inputs.source, inputs.rows, inputs.location
        )
    except DatasetError as exc:
        fail(f"collection refused, nothing written: {exc}")
    _logger.info(
        "%s month %d: %d new rows, %d duplicates dropped, %d rows left out as inputs of the test split",
        inputs.technique,
        found.month,
        found.new_rows,
        found.duplicates,
        found.test_overlap,
    )
    return CollectOutput(new_rows=found.new_rows, month=found.month)


@step()
def check_drift(inputs: DriftInput) -> Annotated[str, Parameter(name="drifted")]:
    """Compare the newest batch with the earlier training data; log the report and plot to MLflow."""
    import mlflow
    import pandas as pd

    from models.contract import get
    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings
    from workflows.training import datasets, drift

    settings, technique = get_settings(), get(inputs.technique)
    client = s3_client(settings)
    frames = datasets.batch_frames(client, settings, technique)
    if len(frames) < 2:
        return "false"
    result = drift.report(technique.spec, pd.concat(frames[:-1], ignore_index=True), frames[-1])
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(f"{technique.name}-drift")
    with mlflow.start_run(run_name=f"month-{inputs.month}"):
        mlflow.set_tags({mlflow_tags.TECHNIQUE: technique.name, mlflow_tags.DRIFTED: str(result["drifted"]).lower()})
        mlflow.log_dict(result, "drift/report.json")
        mlflow.log_figure(drift.plot(result), "drift/plot.png")
    _logger.info(
        "%s month %d drift: %s %s", technique.name, inputs.month, result["drifted"], result["drifted_features"]
    )
    return "true" if result["drifted"] else "false"


@step()
def notify(inputs: NotifyInput) -> None:
    """Send a summary of the run (status, technique, metrics, decision, commit, run id); never fails the run.

    First, an MLflow run of this workflow run still RUNNING (its step was killed, or lost MLflow for good) is ended
    as FAILED, so no run stays RUNNING after its workflow ended.
    """
    from workflows.delivery import notify as notifier
    from workflows.settings import get_settings
    from workflows.steps import mlflow_logging

    settings = get_settings()
    try:
        ended = mlflow_logging.end_orphaned_runs(settings.mlflow_tracking_uri, inputs.workflow_name)
        if ended:
            _logger.info("%s ended: marked its MLflow run(s) %s FAILED", inputs.workflow_name, ", ".join(ended))
    except Exception as exc:  # MLflow away: the next train attempt of this run marks them (fail_stale_runs)
        _logger.warning("could not end the MLflow runs left RUNNING: %s", exc)
    try:
        facts = notifier.facts(
            settings, inputs.workflow_name, inputs.status, inputs.technique, json.loads(inputs.failures or "[]")
        )
    except Exception as exc:  # a summary that cannot be gathered is still sent, with what is known
        _logger.warning("could not gather every fact: %s", exc)
        facts = [{"workflow": inputs.workflow_name, "status": inputs.status, "technique": inputs.technique}]
    if inputs.when_idle == "log" and inputs.status == "Succeeded" and not any(f.get("version") for f in facts):
        _logger.info("%s: nothing new, nothing trained; no notification", inputs.workflow_name)
        return
    for fact in facts:
        notifier.send(settings.notify_url, notifier.summary(fact))
