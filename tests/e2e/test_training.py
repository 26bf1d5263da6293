"""The training pipeline end to end through the engine, against the real embedded S3 and MLflow."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.contract import get
from tests.conftest import ctcd
from tests.e2e.conftest import SMALL
from workflows.delivery import ledger, promotion
from workflows.platform.s3 import s3_client
from workflows.settings import Settings
from workflows.training import datasets


def _staging(platform: Settings, technique: str) -> str:
    """The version staging pins now: the champion, which the gate compares with, is always that one."""
    doc = promotion.current(platform.git_remote, "main", technique, "staging")
    return str(doc["a"]["version"]) if doc else ""


def _version(registry: MlflowClient, name: str, number: int) -> Any:
    return registry.get_model_version(name, str(number))


@pytest.mark.parametrize("technique", sorted(SMALL))
def test_first_training_registers_an_eligible_champion(
    runs: dict[str, Any], registry: MlflowClient, technique: str, platform: Settings
) -> None:
    assert runs["first"]["status"]["phase"] == "Succeeded"
    v1 = _version(registry, technique, 1)
    assert v1.tags["ctcd.gate.decision"] == "better"
    assert v1.tags["ctcd.gate.champion"] == ""  # there was none
    first = ledger.history(platform.git_remote, "main", technique, "staging")[0]
    assert (first.version, first.source) == ("1", "training")  # the gate's "better" became staging's first pin
    assert registry.get_model_version_by_alias(technique, "champion").version == _staging(platform, technique)
    lineage = {k: v1.tags[f"ctcd.{k}"] for k in ("technique", "dataset_version", "workflow_run", "git_commit")}
    assert lineage["technique"] == technique
    assert lineage["workflow_run"] == runs["first"]["metadata"]["name"]
    assert len(lineage["dataset_version"]) == 16 and len(lineage["git_commit"]) == 40


@pytest.mark.parametrize("technique", sorted(SMALL))
def test_run_logs_metrics_plot_report_model_and_pins(
    runs: dict[str, Any], registry: MlflowClient, technique: str
) -> None:
    v1 = _version(registry, technique, 1)
    run = registry.get_run(v1.run_id)
    metric = get(technique).spec.metric.name
    assert run.data.metrics[f"test_{metric}"] == pytest.approx(float(v1.tags["ctcd.gate.challenger"]))
    assert any(k.startswith("test_f1_") for k in run.data.metrics)  # per-class metrics
    assert any(k.startswith("cv_") for k in run.data.metrics)
    assert 0.0 <= run.data.metrics["test_ece"] <= 1.0  # calibration of the confidences, beside its diagram
    paths = {a.path for a in registry.list_artifacts(run.info.run_id, "evaluation")}
    problem = get(technique).spec.problem
    plot_name = "evaluation/confusion_matrix.png" if problem == "multiclass" else "evaluation/calibration.png"
    expected = {plot_name, "evaluation/report.json", "evaluation/metric_names.json", "evaluation/reliability.png"}
    expected |= {"evaluation/most_confused.json"} if problem == "multiclass" else set()
    handoff = get(technique).spec.handoff is not None  # a technique that hands off adds its risk-coverage curve
    assert paths == expected | ({"evaluation/risk_coverage.png"} if handoff else set())
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(registry.download_artifacts(run.info.run_id, plot_name, tmp))
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        report = json.loads(
            Path(registry.download_artifacts(run.info.run_id, "evaluation/report.json", tmp)).read_text()
        )
        assert report["metric"] == run.data.metrics[f"test_{metric}"] and report["per_class"]
        import mlflow

        mlflow.set_tracking_uri(registry.tracking_uri)
        model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{technique}/1", dst_path=tmp + "/m"))
        assert hashlib.sha256((model_dir / "model.pkl").read_bytes()).hexdigest() == v1.tags["ctcd.model_sha256"]
        mlmodel = (model_dir / "MLmodel").read_text()
        assert "serialization_format: cloudpickle" in mlmodel and "signature:" in mlmodel
        pins = (model_dir / "requirements.txt").read_text()
        assert "scikit-learn==" in pins and "mlflow==" in pins
        assert (model_dir / "input_example.json").exists()


@pytest.mark.parametrize("technique", sorted(SMALL))
def test_training_again_on_unchanged_data_does_not_promote(
    runs: dict[str, Any], registry: MlflowClient, technique: str, platform: Settings
) -> None:
    assert runs["second"]["status"]["phase"] == "Succeeded"
    v1, v2 = _version(registry, technique, 1), _version(registry, technique, 2)
    assert v2.tags["ctcd.gate.decision"] == "not-better"
    assert v2.tags["ctcd.dataset_version"] == v1.tags["ctcd.dataset_version"]
    assert float(v2.tags["ctcd.gate.delta"]) == pytest.approx(0.0, abs=1e-9)
    assert v2.tags["ctcd.previous_champion"] == "1"
    trained = {
        e.version for e in ledger.history(platform.git_remote, "main", technique, "staging") if e.source == "training"
    }
    assert trained == {"1"}  # not-better: training promoted nothing new
    assert registry.get_model_version_by_alias(technique, "champion").version == _staging(platform, technique)


def _memoized(run: dict[str, Any], template: str) -> list[bool]:
    nodes = run["status"]["nodes"].values()
    return [n["memoizationStatus"]["hit"] for n in nodes if n["templateName"] == template and "memoizationStatus" in n]


def test_unchanged_data_and_code_reuse_the_cached_steps(runs: dict[str, Any], platform: Settings) -> None:
    assert _memoized(runs["first"], "load-data") == [False, False]
    assert _memoized(runs["second"], "load-data") == [True, True]
    assert _memoized(runs["second"], "score-champion") == [False, False]  # v1 became champion in between
    nodes = runs["second"]["status"]["nodes"].values()
    champion_keys = sorted(
        n["memoizationStatus"]["key"]
        for n in nodes
        if n["templateName"] == "score-champion" and "memoizationStatus" in n
    )
    assert [k.split("-v1-")[0] for k in champion_keys] == [f"score-champion-{t}" for t in sorted(SMALL)]
    assert _memoized(runs["second"], "train") == []  # a challenger is always trained afresh
    shown = ctcd(platform, "runs", "get", runs["second"]["metadata"]["name"]).stdout
    assert "2 step(s) reused from the memoization cache" in shown
    assert shown.count("cached: outputs reused") == 2


def test_models_table_reports_the_decisions(runs: dict[str, Any], platform: Settings) -> None:
    table = json.loads(ctcd(platform, "models", "-o", "json").stdout)
    rows = {r["technique"]: r for r in table if r["technique"] in SMALL}  # the ones these runs trained
    assert {r["decision"] for r in rows.values()} == {"not-better"}
    untrained = [r for r in table if r["technique"] not in SMALL]
    assert untrained and all(r["version"] == "-" and not r["leads"] for r in untrained)
    assert rows["intent-classifier"]["leads"] and rows["intent-classifier"]["task"] == "intents"
    assert all(r["champion"] == _staging(platform, name) for name, r in rows.items())


def test_test_split_stays_frozen_while_train_grows(runs: dict[str, Any], platform: Settings, tmp_path: Path) -> None:
    technique = get("invoice-matcher")
    client = s3_client(platform)
    before = datasets.snapshot(client, platform, technique)
    batch = tmp_path / "march.csv"
    batch.write_bytes(datasets.frame_to_csv(technique.generate(300, seed=5, batch=2)))
    added = ctcd(platform, "data", "add", technique.name, str(batch))
    assert added.returncode == 0, added.stderr
    after = datasets.snapshot(client, platform, technique)
    assert after.test == before.test  # same key, same sha256, same rows
    assert len(after.batches) == len(before.batches) + 1 and after.version != before.version
    assert datasets.snapshot(client, platform, technique).version == after.version  # content-addressed


def test_a_bad_file_fails_the_run_and_registers_nothing(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    client = s3_client(platform)
    key = "intents/train/batch-9999.csv"  # the intents task's dataset
    client.put_object(Bucket=platform.datasets_bucket, Key=key, Body=b"text,label\nhello,greet\n")
    versions_before = len(registry.search_model_versions("name = 'intent-classifier'"))
    try:
        result = ctcd(
            platform,
            "submit",
            "--from",
            "workflowtemplate/train",
            "-p",
            "technique=intent-classifier",
            "--wait",
            "-o",
            "name",
        )
        assert result.returncode == 1
        name = result.stdout.strip().splitlines()[-1]
        logs = ctcd(platform, "runs", "logs", name, "--node", "load-data(0)").stdout
        assert f"s3://{platform.datasets_bucket}/{key}: missing column(s) intent; unexpected column(s) label" in logs
        assert "Traceback" not in logs
        run = json.loads(ctcd(platform, "runs", "get", name, "-o", "json").stdout)
        attempts = [n for n in run["status"]["nodes"].values() if n["displayName"].startswith("load-data(")]
        assert len(attempts) == 1  # bad input (exit code 2) is final: retryStrategy.expression skips the retries
    finally:
        client.delete_object(Bucket=platform.datasets_bucket, Key=key)
    assert len(registry.search_model_versions("name = 'intent-classifier'")) == versions_before


def test_unknown_technique_is_refused_at_submit(platform: Settings) -> None:
    result = ctcd(platform, "submit", "--from", "workflowtemplate/train", "-p", "technique=fraud-detector")
    assert result.returncode == 1
    known = "['intent-classifier', 'intent-spacy', 'invoice-matcher']"
    assert f"technique='fraud-detector' is not one of {known}" in result.stderr


def test_users_can_add_their_own_parquet_from_s3(runs: dict[str, Any], platform: Settings) -> None:
    import io

    technique = get("intent-classifier")
    client = s3_client(platform)
    buffer = io.BytesIO()
    technique.generate(200, seed=7, batch=1).to_parquet(buffer)
    client.put_object(Bucket=platform.artifacts_bucket, Key="uploads/april.parquet", Body=buffer.getvalue())
    before = datasets.snapshot(client, platform, technique)
    added = ctcd(platform, "data", "add", technique.name, f"s3://{platform.artifacts_bucket}/uploads/april.parquet")
    assert added.returncode == 0, added.stderr
    after = datasets.snapshot(client, platform, technique)
    assert after.batches[-1]["rows"] == 200 and after.test == before.test

    client.put_object(Bucket=platform.artifacts_bucket, Key="uploads/broken.csv", Body=b"text\nonly one column\n")
    refused = ctcd(platform, "data", "add", technique.name, f"s3://{platform.artifacts_bucket}/uploads/broken.csv")
    assert refused.returncode == 1 and "missing column(s) intent" in refused.stderr
    assert datasets.snapshot(client, platform, technique).version == after.version  # nothing was written


def test_the_gate_cannot_be_fooled_by_sending_the_test_split_back(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient, tmp_path: Path
) -> None:
    technique = get("intent-classifier")
    client = s3_client(platform)
    before = datasets.snapshot(client, platform, technique)
    frozen = f"s3://{platform.datasets_bucket}/{technique.dataset}/{datasets.TEST_KEY}"
    refused = ctcd(platform, "data", "add", technique.name, frozen)
    assert refused.returncode == 1 and "repeat inputs of the frozen test split" in refused.stderr, refused.stderr
    assert "--drop-test-overlap" in refused.stderr
    test = pd.read_csv(io.BytesIO(datasets.read_object(client, platform.datasets_bucket, before.test["key"])))
    disguised = tmp_path / "disguised.csv"  # the same questions, shouted and spaced, some relabelled
    disguised.write_text(test.assign(text=[f"  {t.upper()}  " for t in test["text"]]).to_csv(index=False))
    again = ctcd(platform, "data", "add", technique.name, str(disguised), "--drop-test-overlap")
    assert again.returncode == 1 and "every row repeats an input of the frozen test split" in again.stderr
    copy = ctcd(platform, "data", "add", technique.name, f"s3://{platform.datasets_bucket}/{before.batches[0]['key']}")
    assert copy.returncode == 1 and "holds exactly the rows of the active batch" in copy.stderr, copy.stderr
    mixed = tmp_path / "mixed.csv"
    fresh = technique.generate(60, seed=41, batch=3)
    pd.concat([fresh, test.head(5)]).to_csv(mixed, index=False)
    dropped = ctcd(platform, "data", "add", technique.name, str(mixed), "--drop-test-overlap")
    assert dropped.returncode == 0 and "left out 5 row(s) whose input is in the frozen test split" in dropped.stdout
    listing = json.loads(ctcd(platform, "data", "ls", technique.name, "-o", "json").stdout)
    assert all(f["test_overlap"] == 0 for f in listing["files"] if f["role"] != "test")
    after = datasets.snapshot(client, platform, technique)
    assert after.batches[-1]["rows"] == 60 and after.test == before.test
    run = registry.get_run(_version(registry, technique.name, 1).run_id)
    assert run.data.metrics["train_test_overlap_rows"] == 0  # the training run reports it, 0 by construction
