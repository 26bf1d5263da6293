"""What every training run logs to MLflow: lineage tags, the model with its signature, example and pins."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from models.contract import Technique
from workflows.platform import mlflow_tags
from workflows.settings import REPO_ROOT

PINNED = ("scikit-learn", "numpy", "pandas", "scipy", "cloudpickle", "mlflow")
MODEL_FILE = "model.pkl"
_SIGNATURE_TYPES = {"string": "string", "integer": "long", "number": "double", "date": "string", "double": "double"}


def git_commit() -> str:
    """The commit the code came from: ``CTCD_GIT_COMMIT`` (set in images), else the repository's HEAD."""
    if os.environ.get("CTCD_GIT_COMMIT"):
        return os.environ["CTCD_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lineage(technique: str, dataset_version: str, workflow_run: str) -> dict[str, str]:
    """Lineage tags of a run or a registered version."""
    return {
        mlflow_tags.TECHNIQUE: technique,
        mlflow_tags.DATASET_VERSION: dataset_version,
        mlflow_tags.WORKFLOW_RUN: workflow_run,
        mlflow_tags.GIT_COMMIT: git_commit(),
    }


def requirements(technique: Technique) -> list[str]:
    """Pinned requirements of the served model (the technique's libraries at their installed versions)."""
    names = list(dict.fromkeys([*PINNED, *technique.spec.requirements]))
    return [f"{name}=={metadata.version(name)}" for name in names]


def signature(technique: Technique) -> Any:
    """The serving signature as the predictor answers it.

    ``technique.yaml``'s outputs, plus ``reason`` and ``candidate`` for a technique that hands questions off.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    serving = technique.spec.serving
    outputs: list[Any] = [ColSpec(_SIGNATURE_TYPES[f.type], f.name) for f in serving.outputs]  # type: ignore[arg-type]
    if technique.spec.handoff is not None:
        outputs += [ColSpec("string", "reason"), ColSpec("string", "candidate")]  # type: ignore[arg-type]
    return ModelSignature(
        inputs=Schema([ColSpec(_SIGNATURE_TYPES[f.type], f.name) for f in serving.inputs]),  # type: ignore[arg-type]
        outputs=Schema(outputs),
    )


def model_metadata(technique: Technique, handoff: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the MLmodel file carries beyond the signature.

    Each input's declared type (the predictor checks dates) and, for a technique that hands off, the chosen
    threshold with its reason (``ctcd_handoff``).
    """
    meta: dict[str, Any] = {"ctcd_input_types": {f.name: f.type for f in technique.spec.serving.inputs}}
    if handoff:
        meta["ctcd_handoff"] = handoff
    return meta


def handoff_threshold(model_uri: str) -> float | None:
    """The hand-off threshold a logged model carries (None when it answers every question)."""
    from mlflow.models import get_model_info

    entry = (get_model_info(model_uri).metadata or {}).get("ctcd_handoff") or {}
    return float(entry["threshold"]) if "threshold" in entry else None


def source_tags(workflow_run: str) -> dict[str, str]:
    """The run's Source in the MLflow UI: the workflow run that trained it, at the code's commit."""
    return {
        "mlflow.source.type": "JOB",
        "mlflow.source.name": f"argo workflow {workflow_run}",
        "mlflow.source.git.commit": git_commit(),
        mlflow_tags.WORKFLOW_RUN: workflow_run,  # from the run's first moment, so an exit handler can always find it
    }


def log_inputs(bucket: str, version: Any, train: Any, test: Any, target: str) -> None:
    """Log the exact training and test data as MLflow Datasets (the run page's Datasets panel).

    The training dataset's source is the dataset version's manifest (the files and their sha256) and its digest
    the version; the test dataset's source is the frozen split itself.
    """
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    manifest = f"s3://{bucket}/{version.technique}/versions/{version.version}.json"
    train_set = from_pandas(
        train, source=manifest, targets=target, name=f"{version.technique}-train", digest=version.version
    )
    test_set = from_pandas(
        test,
        source=f"s3://{bucket}/{version.test['key']}",
        targets=target,
        name=f"{version.technique}-test",
        digest=str(version.test["sha256"])[:16],
    )
    mlflow.log_input(train_set, context="training")
    mlflow.log_input(test_set, context="evaluation")


def log_model(
    technique: Technique, model: Any, examples: Any, serialization: str, handoff: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Log the model in the active run; return its URI and the sha256 of its serialized file."""
    import mlflow

    info = mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format=serialization,
        signature=signature(technique),
        input_example=examples[technique.spec.feature_columns()].head(3),
        pip_requirements=requirements(technique),
        metadata=model_metadata(technique, handoff),
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=tmp))
        digest = hashlib.sha256((local / MODEL_FILE).read_bytes()).hexdigest()
    return str(info.model_uri), digest


def fail_stale_runs(experiment_id: str, workflow_run: str) -> list[str]:
    """Mark FAILED the runs an earlier attempt of this workflow run left RUNNING (killed, or its service lost).

    Returns:
        The ids of the runs it marked.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    stale = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`ctcd.workflow_run` = '{workflow_run}' and attributes.status = 'RUNNING'",
    )
    for run in stale:
        client.set_terminated(run.info.run_id, "FAILED")
    return [run.info.run_id for run in stale]


def end_orphaned_runs(tracking_uri: str, workflow_run: str) -> list[str]:
    """Mark FAILED every MLflow run of ``workflow_run`` still RUNNING once that workflow run has ended.

    Returns:
        The ids of the runs it marked.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    stale = client.search_runs(
        experiments, filter_string=f"tags.`ctcd.workflow_run` = '{workflow_run}' and attributes.status = 'RUNNING'"
    )
    for run in stale:
        client.set_terminated(run.info.run_id, "FAILED")
    return [run.info.run_id for run in stale]


def log_evaluation(
    spec: Any, model: Any, test: Any, dataset_version: str, run_id: str, threshold: float | None = None
) -> dict[str, Any]:
    """Score ``model`` on the frozen test split and log it to the run: metrics, per-class F1, plots, report.

    Per-class metric names are made valid for MLflow whatever the labels hold (``?``, spaces, any script); the
    label → metric name mapping is logged as ``evaluation/metric_names.json``.  With a hand-off ``threshold``
    the selective metrics and a risk-coverage plot are logged too.

    Returns:
        The scores (see :func:`workflows.training.evaluation.score`).
    """
    import mlflow

    from workflows.training import evaluation

    every = evaluation.answers(spec, model, test)
    scores = evaluation.score_answers(spec, every, threshold)
    names = evaluation.metric_names("test_f1_", scores["per_class"])
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"test_{k}": v for k, v in scores["metrics"].items()})
        mlflow.log_metrics({names[k]: float(v["f1-score"]) for k, v in scores["per_class"].items()})
        mlflow.log_dict({"label_to_metric": names}, "evaluation/metric_names.json")
        kind = "confusion_matrix" if spec.problem == "multiclass" else "calibration"
        mlflow.log_figure(evaluation.plot(spec, every), f"evaluation/{kind}.png")
        mlflow.log_figure(evaluation.reliability_plot(spec, every), "evaluation/reliability.png")
        if spec.problem == "multiclass":
            mlflow.log_table(evaluation.most_confused(every), "evaluation/most_confused.json")
        if threshold is not None:
            mlflow.log_figure(evaluation.risk_coverage_plot(spec, every, threshold), "evaluation/risk_coverage.png")
        mlflow.log_dict(
            {"dataset_version": dataset_version, "test_rows": len(test), "threshold": threshold, **scores},
            "evaluation/report.json",
        )
    return scores
