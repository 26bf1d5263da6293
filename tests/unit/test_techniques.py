"""The technique contract and the two shipped techniques' generators."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.contract import UnknownTechnique, discover, get, load_spec
from models.intent_classifier.generate import intents
from workflows.training.validation import parse


def test_both_techniques_are_discovered_from_their_folders() -> None:
    assert sorted(discover()) == ["intent-classifier", "invoice-matcher"]
    assert get("invoice-matcher").spec.metric.direction == "maximize"


def test_unknown_technique_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownTechnique, match=r"unknown technique 'intent' \(known: intent-classifier, invoice-matcher\)"
    ):
        get("intent")


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "technique.yaml"
    path.write_text("name: Bad_Name\n")
    with pytest.raises(ValueError, match=rf"{path}: .*DNS-1123"):
        load_spec(path)


@pytest.mark.parametrize("name", ["intent-classifier", "invoice-matcher"])
def test_generated_data_meets_the_contract_and_is_deterministic(name: str) -> None:
    technique = get(name)
    first = technique.generate(300, seed=3, batch=0)
    assert list(first.columns) == list(technique.spec.dataset.columns)
    parse(f"{name}.csv", first.to_csv(index=False).encode(), technique.spec)
    assert first.equals(technique.generate(300, seed=3, batch=0))
    assert not first.equals(technique.generate(300, seed=3, batch=1))


def test_intent_generator_covers_about_80_intents() -> None:
    labels = intents()
    assert 75 <= len(labels) <= 85 and len(set(labels)) == len(labels)
    frame = get("intent-classifier").generate(10000, seed=0)
    assert frame["intent"].nunique() == len(labels)
    assert frame["text"].nunique() > 7000  # varied, not a handful of templates


def test_matcher_generator_has_hard_negatives() -> None:
    frame = get("invoice-matcher").generate(600, seed=1)
    assert 0.3 < frame["is_match"].mean() < 0.4
    same_customer = frame[frame["payer_name"].str.upper() == frame["customer_name"].str.upper()]
    assert (same_customer["is_match"] == 0).any()  # the same customer's other invoices are negatives
