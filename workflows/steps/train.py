"""Steps of the ``train`` workflow: load and validate data, train, evaluate, re-score the champion, decide, register.

Each function is a hera runner script on typed inputs; datasets pass between steps as S3 keys (a dataset
version names its files), never as parameters.  Heavy imports stay inside the bodies.
No `from __future__ import annotations` here: hera reads the real annotations of step functions.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from hera.workflows import Input, Output, Parameter
from hera.workflows.models import Cache, LocalObjectReference, Memoize

from workflows.platform import mlflow_tags
from workflows.steps.common import RETRY, fail, on_abort, outage_guard, require, step

_logger = logging.getLogger(__name__)
SERIALIZATION = "cloudpickle"  # the predictor loads this format and checks its sha256 first
CACHE = "ctcd-cache"
CACHE_MAX_AGE = "1440h"


class FingerprintInput(Input):
    """Which technique, and optionally which recorded dataset version."""

    technique: str
    data_version: str = ""


class FingerprintOutput(Output):
    """Content keys of this run's inputs, for the memoized steps."""

    data_key: Annotated[str, Parameter(name="data-key")]
    code_version: Annotated[str, Parameter(name="code-version")]
    champion_version: Annotated[str, Parameter(name="champion-version")]


class DataInput(Input):
    """Which technique, and optionally which recorded dataset version; the keys only name the cache entry."""

    technique: str
    data_version: str = ""
    data_key: str = ""
    code_version: str = ""


class DataOutput(Output):
    """The dataset version the rest of the run uses."""

    dataset_version: Annotated[str, Parameter(name="dataset-version")]
    train_rows: Annotated[int, Parameter(name="train-rows")]
    test_rows: Annotated[int, Parameter(name="test-rows")]


class TrainInput(Input):
    """What to train on, with which hyper-parameters, for which workflow run."""

    technique: str
    dataset_version: str
    hyperparameters: str = "{}"
    workflow_name: str = "local"


class TrainOutput(Output):
    """The MLflow run and the logged model."""

    run_id: Annotated[str, Parameter(name="run-id")]
    model_uri: Annotated[str, Parameter(name="model-uri")]
    model_sha256: Annotated[str, Parameter(name="model-sha256")]


class EvaluateInput(Input):
    """The challenger to score on the frozen test split."""

    technique: str
    dataset_version: str
    run_id: str
    model_uri: str


class ChampionInput(Input):
    """The champion version to re-score on the run's test split ('' when there is none)."""

    technique: str
    dataset_version: str
    champion_version: str = ""
    code_version: str = ""


class ChampionOutput(Output):
    """The champion's version and metric ('' when there is no champion)."""

    version: Annotated[str, Parameter(name="version")]
    metric: Annotated[str, Parameter(name="metric")]


class DecideInput(Input):
    """Both metrics on the same split."""

    technique: str
    challenger_metric: str
    champion_metric: str = ""


class RegisterInput(Input):
    """Everything the registered version records."""

    technique: str
    run_id: str
    model_uri: str
    model_sha256: str
    dataset_version: str
    workflow_name: str
    decision: str
    champion_version: str = ""


class RegisterOutput(Output):
    """The registered version and the gate's decision."""

    version: Annotated[str, Parameter(name="version")]
    decision: Annotated[str, Parameter(name="decision")]


@contextmanager
def _services(technique_name: str, *services: str) -> Iterator[tuple[Any, Any, Any]]:
    """Settings, technique and S3 client for the block; ends the step clearly if a service is missing or lost.

    S3 is always checked; ``services`` adds others (``mlflow``).  An unreachable service, at the start or in the
    middle of the block, fails the attempt with the variable to fix (exit 75), so the retryStrategy retries it.
    """
    from models.contract import UnknownTechnique, get
    from workflows.platform.s3 import s3_client
    from workflows.settings import get_settings

    settings = get_settings()
    try:
        technique = get(technique_name)
    except UnknownTechnique as exc:
        fail(str(exc))
    needed = ("s3", *services)
    require(settings, needed)
    with outage_guard(settings, needed):
        yield settings, technique, s3_client(settings)


def _memoize(key: str) -> Memoize:
    """Argo memoization in the ``ctcd-cache`` ConfigMap; entries older than two months are ignored."""
    return Memoize(key=key, max_age=CACHE_MAX_AGE, cache=Cache(config_map=LocalObjectReference(name=CACHE)))


@step(retry_strategy=RETRY)
def fingerprint(inputs: FingerprintInput) -> FingerprintOutput:
    """Key the run's inputs by content: the data files' ETags, the code's hash, the champion's version."""
    from workflows.platform import registry
    from workflows.training import fingerprint as keys

    with _services(inputs.technique, "mlflow") as (settings, technique, s3):
        data_key = keys.data_key(s3, settings.datasets_bucket, technique.dataset, inputs.data_version)
        current = registry.champion(registry.client(settings.mlflow_tracking_uri), technique.name)
    champion = str(current.version) if current is not None else ""
    code = keys.code_version(technique.package)
    _logger.info("%s: data %s, code %s, champion %s", technique.name, data_key, code, champion or "none")
    return FingerprintOutput(data_key=data_key, code_version=code, champion_version=champion)


@step(
    retry_strategy=RETRY,
    memoize=_memoize(
        "load-data-{{inputs.parameters.technique}}-{{inputs.parameters.data_key}}-{{inputs.parameters.code_version}}"
    ),
)
def load_data(inputs: DataInput) -> DataOutput:
    """Validate the technique's dataset and record (or reuse) a dataset version."""
    from workflows.training import datasets
    from workflows.training.validation import DatasetError

    with _services(inputs.technique) as (settings, technique, s3):
        try:
            if inputs.data_version:
                version = datasets.load_version(s3, settings, technique, inputs.data_version)
            else:
                version = datasets.snapshot(s3, settings, technique)
        except DatasetError as exc:
            fail(str(exc))
    train_rows = sum(int(b["rows"]) for b in version.batches)
    _logger.info("dataset %s: %d train rows, %d test rows", version.version, train_rows, version.test["rows"])
    return DataOutput(dataset_version=version.version, train_rows=train_rows, test_rows=int(version.test["rows"]))


@step("train", retry_strategy=RETRY)
def train(inputs: TrainInput) -> TrainOutput:
    """Fit the technique, log parameters, CV scores, the model (signature, example, pinned requirements) to MLflow.

    A failed attempt leaves its MLflow run marked FAILED (or unfinished, if MLflow itself went away); nothing is
    registered until the ``register`` step.
    """
    import mlflow

    from workflows.steps import mlflow_logging
    from workflows.training import datasets, leakage

    with _services(inputs.technique, "mlflow") as (settings, technique, s3):
        try:
            hyperparameters = technique.spec.check_hyperparameters(json.loads(inputs.hyperparameters or "{}"))
        except ValueError as exc:  # refused input: exit 2, not retried
            fail(f"hyperparameters {inputs.hyperparameters!r}: {exc}")
        version = datasets.load_version(s3, settings, technique, inputs.dataset_version)
        train_frame, test_frame = datasets.frames(s3, settings, technique, version)
        train_frame, overlap = leakage.without_test_rows(train_frame, test_frame, technique.spec)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        experiment = mlflow.set_experiment(technique.name)
        mlflow_logging.fail_stale_runs(experiment.experiment_id, inputs.workflow_name)
        with mlflow.start_run(
            run_name=inputs.workflow_name, tags=mlflow_logging.source_tags(inputs.workflow_name)
        ) as run:
            on_abort(lambda: mlflow.MlflowClient().set_terminated(run.info.run_id, "FAILED"))
            mlflow.set_tags(mlflow_logging.lineage(technique.name, version.version, inputs.workflow_name))
            mlflow_logging.log_inputs(settings.datasets_bucket, version, train_frame, test_frame, technique.spec.target)
            fit_frame = train_frame  # out-of-scope rows too: a class of their own, whose prediction hands off
            _logger.info("fitting %s on %d rows (run %s)", technique.name, len(fit_frame), run.info.run_id)
            result = technique.fit(fit_frame, hyperparameters, seed=0)
            threshold = _handoff(technique, result)
            mlflow.log_params({**result.params, "train_rows": len(fit_frame), "serialization": SERIALIZATION})
            mlflow.log_metrics({**result.cv_scores, "train_test_overlap_rows": overlap})
            handoff = threshold.metadata() if threshold else None
            model_uri, sha = mlflow_logging.log_model(technique, result.model, test_frame, SERIALIZATION, handoff)
            mlflow.set_tag(mlflow_tags.MODEL_SHA256, sha)
    return TrainOutput(run_id=run.info.run_id, model_uri=model_uri, model_sha256=sha)


def _handoff(technique: Any, result: Any) -> Any:
    """The hand-off threshold chosen on the fit's validation predictions (None for a technique without one)."""
    import mlflow

    from workflows.training import handoff

    spec = technique.spec.handoff
    if spec is None:
        return None
    if result.validation is None:
        fail(f"{technique.name} declares a handoff but its fit() returned no validation predictions to choose it on")
    labels, proba = result.validation
    threshold = handoff.choose(spec, labels, proba, result.model.classes_)
    mlflow.log_param("handoff_threshold", threshold.threshold)
    mlflow.log_metrics(
        {
            "validation_coverage": threshold.validation_coverage,
            "validation_answered_accuracy": threshold.validation_accuracy,
        }
    )
    _logger.info("%s: hand-off below %.4f (%s)", technique.name, threshold.threshold, threshold.reason)
    return threshold


@step("train", retry_strategy=RETRY)
def evaluate(inputs: EvaluateInput) -> Annotated[float, Parameter(name="metric")]:
    """Score the challenger on the frozen test split; log metrics, per-class metrics, a plot and a report."""
    import mlflow

    from workflows.steps import mlflow_logging
    from workflows.training import datasets

    with _services(inputs.technique, "mlflow") as (settings, technique, s3):
        version = datasets.load_version(s3, settings, technique, inputs.dataset_version)
        _, test_frame = datasets.frames(s3, settings, technique, version)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        model = mlflow.sklearn.load_model(inputs.model_uri)
        on_abort(lambda: mlflow.MlflowClient().set_terminated(inputs.run_id, "FAILED"))
        threshold = mlflow_logging.handoff_threshold(inputs.model_uri)
        scores = mlflow_logging.log_evaluation(
            technique.spec, model, test_frame, version.version, inputs.run_id, threshold
        )
        _score_rivals(technique, test_frame, inputs.run_id, float(scores["metric"]))
    return float(scores["metric"])


def _score_rivals(technique: Any, test_frame: Any, run_id: str, own: float) -> None:
    """Re-score the champions of the task's other techniques on the same split; log them and the task's leader.

    Logged on the challenger's run as ``task_<technique>_champion_<metric>`` and the tag ``ctcd.task_leader``.
    It informs (``ctcd models`` shows the leader); the gate still compares the challenger with its own champion.
    """
    import mlflow

    from models.contract import by_task, get
    from workflows.platform import registry
    from workflows.steps import mlflow_logging
    from workflows.training import evaluation, gate

    spec, client = technique.spec, registry.client(mlflow.get_tracking_uri())
    values = {technique.name: own}
    for name in by_task()[technique.dataset]:
        champion = registry.champion(client, name) if name != technique.name else None
        if champion is None:
            continue
        uri = f"models:/{name}/{champion.version}"
        rival = mlflow.sklearn.load_model(uri)
        values[name] = float(
            evaluation.score(get(name).spec, rival, test_frame, mlflow_logging.handoff_threshold(uri))["metric"]
        )
    leader = gate.leader(values, spec.metric.direction)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(
            {f"task_{n}_champion_{spec.metric.name}": v for n, v in values.items() if n != technique.name}
        )
        mlflow.set_tag(mlflow_tags.TASK_LEADER, leader or "")
    _logger.info("%s on the %s split: %s; leader %s", technique.name, technique.dataset, values, leader)


@step(
    "train",
    retry_strategy=RETRY,
    memoize=_memoize(
        "score-champion-{{inputs.parameters.technique}}-v{{inputs.parameters.champion_version}}-"
        "{{inputs.parameters.dataset_version}}-{{inputs.parameters.code_version}}"
    ),
)
def score_champion(inputs: ChampionInput) -> ChampionOutput:
    """Re-score the champion version the run started with on the same test split."""
    import mlflow

    from workflows.steps import mlflow_logging
    from workflows.training import datasets, evaluation

    if not inputs.champion_version:
        _logger.info("%s has no champion yet", inputs.technique)
        return ChampionOutput(version="", metric="")
    with _services(inputs.technique, "mlflow") as (settings, technique, s3):
        version = datasets.load_version(s3, settings, technique, inputs.dataset_version)
        _, test_frame = datasets.frames(s3, settings, technique, version)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        uri = f"models:/{technique.name}/{inputs.champion_version}"
        model = mlflow.sklearn.load_model(uri)
        threshold = mlflow_logging.handoff_threshold(uri)
    metric = evaluation.score(technique.spec, model, test_frame, threshold)["metric"]
    _logger.info("champion %s v%s scores %.4f", technique.name, inputs.champion_version, metric)
    return ChampionOutput(version=inputs.champion_version, metric=str(metric))


@step()
def decide(inputs: DecideInput) -> Annotated[str, Parameter(name="decision")]:
    """Apply the gate: better only when the metric beats the champion by the technique's minimum improvement."""
    from models.contract import get
    from workflows.training.gate import decide as gate

    spec = get(inputs.technique).spec
    champion = float(inputs.champion_metric) if inputs.champion_metric else None
    verdict = gate(float(inputs.challenger_metric), champion, spec.metric.direction, spec.min_improvement)
    _logger.info("%s: %s (%s)", inputs.technique, verdict.decision, verdict.reason)
    return json.dumps(verdict.tags())


@step(retry_strategy=RETRY)
def register(inputs: RegisterInput) -> RegisterOutput:
    """Register the challenger with lineage, artifact sha256 and the gate's evidence.

    A better one becomes ``champion`` once its promotion to staging is committed (the bridge follows git).

    Idempotent per training run: a retry after a lost connection finishes the version the failed attempt may have
    created instead of registering the run twice.
    """
    from workflows.platform import registry
    from workflows.steps import mlflow_logging

    with _services(inputs.technique, "mlflow") as (settings, technique, _):
        gate_tags = json.loads(inputs.decision)
        tags = {
            **mlflow_logging.lineage(technique.name, inputs.dataset_version, inputs.workflow_name),
            **gate_tags,
            mlflow_tags.RUN_ID: inputs.run_id,
            mlflow_tags.MODEL_SHA256: inputs.model_sha256,
            mlflow_tags.SERIALIZATION: SERIALIZATION,
            mlflow_tags.METRIC: technique.spec.metric.name,
            mlflow_tags.PREVIOUS_CHAMPION: inputs.champion_version,
        }
        client = registry.client(settings.mlflow_tracking_uri)
        version = registry.register(client, technique.name, inputs.model_uri, inputs.run_id, tags)
    _logger.info("registered %s v%s (%s)", technique.name, version, gate_tags[mlflow_tags.GATE_DECISION])
    return RegisterOutput(version=version, decision=gate_tags[mlflow_tags.GATE_DECISION])
