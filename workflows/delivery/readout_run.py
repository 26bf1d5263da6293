"""Each readout as an MLflow run in the task's experiment: its figures as metrics, a chart, and the whole readout.

The run (``readout-<name>-<namespace>``, tagged ``ctcd.kind=readout``) logs, per arm, the requests, 5xx rate,
hand-off rate, mean confidence, label shift, labelled rows and accuracy with its always-valid interval, and per
difference its estimate and interval; ``readout.png`` draws each arm's accuracy with its interval beside its
hand-off rate, and ``readout.json`` holds the readout as ``ctcd readout -o json`` prints it. A canary analysis
round names this run in its commit (``Analysis-Run``), so the evidence of a decision is one click away.
"""

from __future__ import annotations

import math
import re
from typing import Any

from workflows.platform import mlflow_tags

KIND_TAG = mlflow_tags.KIND
ENVIRONMENT_TAG = mlflow_tags.NAMESPACE
FIGURES = ("requests", "errors_5xx", "p50_ms", "p99_ms", "handoff_rate", "mean_confidence", "label_shift", "labelled")


def _key(text: str) -> str:
    """An MLflow metric key from an arm's name (letters, digits, ``_ - . /`` only)."""
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", text)


def metrics(found: dict[str, Any]) -> dict[str, float]:
    """Every finite figure of a readout, keyed ``<service>_v<version>.<figure>`` and ``difference.<arm>.<figure>``."""
    flat: dict[str, float] = {}
    for arm in found["arms"]:
        prefix = _key(f"{arm['service']}_v{arm['model_version']}")
        for figure in (*FIGURES, "accuracy", "accuracy_low", "accuracy_high"):
            flat[f"{prefix}.{figure}"] = float(arm[figure])
    for gap in found["differences"]:
        prefix = "difference." + _key(gap["arm"].replace(" ", "_"))
        for figure in ("accuracy_difference", "low", "high", "more_labelled_rows_needed"):
            flat[f"{prefix}.{figure}"] = float(gap[figure])
    return {k: v for k, v in flat.items() if math.isfinite(v)}


def chart(found: dict[str, Any]) -> Any:
    """Accuracy on confirmed labels with its 95% interval, and the hand-off rate, per arm (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = found["arms"]
    names = [f"{a['service']}\nv{a['model_version']}" for a in arms]
    figure, (left, right) = plt.subplots(1, 2, figsize=(4 + 1.6 * len(arms), 3.6))
    for i, arm in enumerate(arms):
        if arm["labelled"]:
            low, high = arm["accuracy"] - arm["accuracy_low"], arm["accuracy_high"] - arm["accuracy"]
            left.errorbar([i], [arm["accuracy"]], yerr=[[low], [high]], fmt="o", capsize=6)
    left.set(xticks=range(len(arms)), xticklabels=names, ylim=(0, 1), title="accuracy on confirmed labels (95% CS)")
    right.bar(range(len(arms)), [0 if math.isnan(a["handoff_rate"]) else a["handoff_rate"] for a in arms])
    right.set(xticks=range(len(arms)), xticklabels=names, title="hand-off rate")
    figure.suptitle(f"{found['name']} in {found['namespace']}")
    figure.tight_layout()
    return figure


def log(tracking_uri: str, found: dict[str, Any]) -> str:
    """Log a readout as a finished run in its task's experiment; return the run id."""
    import time

    import matplotlib.pyplot as plt
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(found["task"])
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(found["task"])
    tags = {KIND_TAG: "readout", ENVIRONMENT_TAG: found["namespace"]}
    run = client.create_run(experiment_id, run_name=f"readout-{found['name']}-{found['namespace']}", tags=tags)
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    figures = [Metric(key, value, now, 0) for key, value in metrics(found).items()]
    for start in range(0, len(figures), 1000):  # MLflow takes at most 1,000 metrics per batch
        client.log_batch(run_id, metrics=figures[start : start + 1000], tags=[RunTag(KIND_TAG, "readout")])
    client.log_dict(run_id, found, "readout.json")
    figure = chart(found)
    client.log_figure(run_id, figure, "readout.png")
    plt.close(figure)
    client.set_terminated(run_id)
    return run_id
