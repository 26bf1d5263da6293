"""The champion gate's decision table."""

from __future__ import annotations

import pytest

from workflows.training.gate import decide, from_tags


@pytest.mark.parametrize(
    ("challenger", "champion", "direction", "threshold", "expected"),
    [
        (0.90, None, "maximize", 0.01, "better"),  # no champion: eligible
        (0.95, 0.90, "maximize", 0.01, "better"),  # beats by more than the threshold
        (0.91, 0.90, "maximize", 0.01, "better"),  # beats by exactly the threshold
        (0.905, 0.90, "maximize", 0.01, "not-better"),  # better, but not by enough
        (0.90, 0.90, "maximize", 0.0, "not-better"),  # equal is never better, even with no threshold
        (0.85, 0.90, "maximize", 0.01, "not-better"),  # worse
        (0.20, 0.30, "minimize", 0.05, "better"),  # lower loss by 0.10
        (0.28, 0.30, "minimize", 0.05, "not-better"),
        (0.35, 0.30, "minimize", 0.0, "not-better"),
    ],
)
def test_decision_table(
    challenger: float, champion: float | None, direction: str, threshold: float, expected: str
) -> None:
    assert decide(challenger, champion, direction, threshold).decision == expected


def test_evidence_is_recorded_as_tags() -> None:
    verdict = decide(0.95, 0.90, "maximize", 0.01)
    tags = verdict.tags()
    assert tags["ctcd.gate.decision"] == "better"
    assert float(tags["ctcd.gate.delta"]) == pytest.approx(0.05)
    assert tags["ctcd.gate.champion"] == "0.9" and tags["ctcd.gate.threshold"] == "0.01"
    assert from_tags({**tags, "other": "x"})["challenger"] == "0.95"


@pytest.mark.parametrize(("challenger", "champion"), [(float("nan"), 0.9), (0.9, float("inf"))])
def test_non_finite_metrics_are_refused(challenger: float, champion: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        decide(challenger, champion, "maximize", 0.01)


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="maximize or minimize"):
        decide(0.9, 0.8, "up", 0.0)


def test_webhook_signature_matches_mlflow_and_is_checked() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    from workflows.delivery.webhook import sign, verify

    assert sign("s3cret", "d1", "1700000000", '{"a":1}') == _generate_hmac_signature(
        "s3cret", "d1", "1700000000", '{"a":1}'
    )
    headers = {
        "X-MLflow-Signature": sign("s3cret", "d1", "1700000000", "{}"),
        "X-MLflow-Delivery-Id": "d1",
        "X-MLflow-Timestamp": "1700000000",
    }
    assert verify("s3cret", headers, "{}", now=1700000010) == ""
    assert verify("other", headers, "{}", now=1700000010) == "signature does not match"
    assert "replay" in verify("s3cret", headers, "{}", now=1700009999)


def test_the_models_table_marks_each_tasks_leader() -> None:
    from workflows.cli.models import leaders

    rows = [
        {"technique": "a", "task": "intents", "direction": "maximize", "champion_value": 0.91},
        {"technique": "b", "task": "intents", "direction": "maximize", "champion_value": 0.93},
        {"technique": "c", "task": "intents", "direction": "maximize", "champion_value": None},
        {"technique": "d", "task": "matching", "direction": "minimize", "champion_value": 0.2},
    ]
    assert [r["technique"] for r in leaders(rows) if r["leads"]] == ["b", "d"]


def test_the_most_confused_pairs_are_counted_per_true_class() -> None:
    import pandas as pd

    from models.contract import get
    from workflows.training import evaluation

    class Fixed:
        classes_ = ["a", "b", "c"]

        picks = {"x": "a", "y": "b", "z": "b"}

        def predict(self, frame: pd.DataFrame) -> list[str]:
            return [self.picks[t] for t in frame["text"]]

        def predict_proba(self, frame: pd.DataFrame) -> object:
            import numpy as np

            return np.eye(3)[[self.classes_.index(p) for p in self.predict(frame)]]

    spec = get("intent-classifier").spec
    test = pd.DataFrame({"text": ["x", "y", "z", "z", "x"], "intent": ["a", "b", "c", "c", "b"]})
    pairs = evaluation.most_confused(evaluation.answers(spec, Fixed(), test))
    assert pairs.to_dict("records") == [
        {"true": "c", "predicted": "b", "rows": 2, "share_of_true": 1.0},
        {"true": "b", "predicted": "a", "rows": 1, "share_of_true": 0.5},
    ]


def test_the_leader_rule_follows_the_metric_s_direction() -> None:
    from workflows.training.gate import leader

    assert leader({"a": 0.9, "b": 0.8}, "maximize") == "a"
    assert leader({"a": 0.9, "b": 0.8}, "minimize") == "b"
    assert leader({}, "maximize") is None
