"""Drift scores and verdicts on generated months: a similar month is stable, a shifted one is not."""

from __future__ import annotations

import random

import pandas as pd

from models.contract import get
from workflows.training import drift


def test_psi_and_ks_separate_same_from_shifted() -> None:
    rng = random.Random(0)
    reference = [rng.gauss(0, 1) for _ in range(3000)]
    same = [rng.gauss(0, 1) for _ in range(1000)]
    shifted = [rng.gauss(0.8, 1) for _ in range(1000)]
    assert drift.psi(reference, same) < 0.05 < 0.2 < drift.psi(reference, shifted)
    assert drift.ks(reference, same) < 0.1 < drift.ks(reference, shifted)


def test_label_and_text_scores() -> None:
    assert drift.category_psi(["a"] * 50 + ["b"] * 50, ["a"] * 48 + ["b"] * 52) < 0.01
    assert drift.category_psi(["a"] * 50 + ["b"] * 50, ["a"] * 90 + ["b"] * 10) > 0.2
    scores = drift.text_scores(["block my card", "pay my bill"], ["bloquear meu cartao agora"])
    assert scores["text_oov"] == 1.0


def test_a_similar_month_is_stable_and_a_drifted_month_is_detected() -> None:
    technique = get("intent-classifier")
    reference = technique.generate(3000, seed=0, batch=0)
    similar = technique.generate(800, seed=1, batch=0)
    drifted = technique.generate(800, seed=1, batch=3)
    assert drift.report(technique.spec, reference, similar)["drifted"] is False
    result = drift.report(technique.spec, reference, drifted)
    assert result["drifted"] is True and result["drifted_features"]


def test_dates_are_reported_but_not_judged() -> None:
    technique = get("invoice-matcher")
    result = drift.report(technique.spec, technique.generate(600, seed=0), technique.generate(300, seed=1))
    assert result["features"]["transfer_date"]["drifted"] is False
    fig = drift.plot(result)
    assert fig.axes[0].get_xlabel() == "score / threshold"
    assert isinstance(pd.DataFrame(result["features"]).T, pd.DataFrame)
