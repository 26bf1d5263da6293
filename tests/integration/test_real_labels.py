"""Real data with labels of any kind: CLINC150 (150 intents), relabelled the way real banking data is written
(spaces, ``?``, accents, other scripts), validated, trained and evaluated into the real MLflow server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.contract import get
from workflows.settings import Settings
from workflows.steps.mlflow_logging import log_evaluation
from workflows.training import datasets
from workflows.training.validation import parse

PER_CLASS_TRAIN, PER_CLASS_TEST = 8, 2


def _human(label: str, i: int) -> str:
    """Labels as people write them: ``card payment reverted?``, ``café — transfer``, ``退款 refund``."""
    words = label.replace("_", " ")
    return [f"{words}?", f"café — {words}", f"退款 {words}", words, f"{words} (é/ü)!"][i % 5]


def _subset(rows: list[list[str]], per_class: int, names: dict[str, str]) -> pd.DataFrame:
    taken: dict[str, int] = {}
    kept = []
    for text, intent in rows:
        if taken.get(intent, 0) < per_class:
            taken[intent] = taken.get(intent, 0) + 1
            kept.append({"text": text, "intent": names[intent]})
    return pd.DataFrame(kept)


@pytest.fixture(scope="module")
def clinc() -> tuple[pd.DataFrame, pd.DataFrame]:
    from workflows.training import examples

    data = examples.clinc150()
    names = {intent: _human(intent, i) for i, intent in enumerate(sorted({i for _, i in data["train"]}))}
    return _subset(data["train"], PER_CLASS_TRAIN, names), _subset(data["test"], PER_CLASS_TEST, names)


def test_odd_labels_validate_train_and_log_to_mlflow(
    platform: Settings, clinc: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    import mlflow

    technique = get("intent-classifier")
    train, test = (
        parse(name, datasets.frame_to_csv(f), technique.spec)
        for name, f in zip(("train.csv", "test.csv"), clinc, strict=True)
    )
    assert train["intent"].nunique() == 150 and any("?" in x for x in train["intent"])
    fitted = technique.fit(train, {"C": [3.0], "cv_folds": 2}, seed=0)
    mlflow.set_tracking_uri(platform.mlflow_tracking_uri)  # also exports MLFLOW_TRACKING_URI: undone below
    try:
        mlflow.set_experiment("ctcd-real-labels")
        with mlflow.start_run() as run:
            pass
        scores = log_evaluation(technique.spec, fitted.model, test, "clinc150-subset", run.info.run_id)
    finally:
        mlflow.set_tracking_uri(None)  # later platforms' `ctcd` processes must not inherit this one's server
    client = MlflowClient(tracking_uri=platform.mlflow_tracking_uri)
    logged = client.get_run(run.info.run_id).data.metrics
    mapping = json.loads(Path(client.download_artifacts(run.info.run_id, "evaluation/metric_names.json")).read_text())
    names = mapping["label_to_metric"]
    assert set(names) == set(test["intent"]) and len(set(names.values())) == 150
    assert all(name in logged for name in names.values())
    assert logged["test_accuracy"] == pytest.approx(scores["metrics"]["accuracy"])
    assert scores["metrics"]["accuracy"] > 0.5  # real signal on 8 examples per intent
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/most_confused.json", "evaluation/report.json"} <= artifacts
    print(f"CLINC150 subset, 150 odd labels: accuracy {scores['metrics']['accuracy']:.3f} on {len(test)} rows")
