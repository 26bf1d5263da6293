"""Canary analysis that acts, against real git and the real embedded S3: a better canary steps up, a worse one is
rolled back, each by one commit with its evidence, and no round decides twice on the same traffic."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from serving import predlog
from tests.gitops_remote import bare_remote
from workflows.delivery import analysis, canary, ledger, overlays, promotion
from workflows.platform import gitrepo
from workflows.platform.s3 import s3_client
from workflows.settings import Settings
from workflows.training import feedback

TECHNIQUE = "intent-classifier"


def _pin(version: str) -> overlays.Pin:
    return overlays.Pin(
        version, f"s3://ctcd-artifacts/mlflow/1/models/m-{version}/artifacts", "b" * 64, f"r{version}", "d"
    )


@pytest.fixture()
def world(platform: Settings, tmp_path: Path) -> tuple[Settings, Any]:
    remote = bare_remote(tmp_path)
    tag = uuid.uuid4().hex[:8]
    settings = platform.model_copy(update={"git_remote": str(remote), "predictions_bucket": f"canary-{tag}"})
    client = s3_client(settings)
    client.create_bucket(Bucket=settings.predictions_bucket)
    promotion.promote(settings.git_remote, "main", overlays.Desired(TECHNIQUE, "staging", "full", _pin("1")), {}, True)
    canary_pin = overlays.Desired(TECHNIQUE, "staging", "canary", _pin("2"), canary_percent=20)
    promotion.promote(settings.git_remote, "main", canary_pin, {}, True)
    time.sleep(1.1)  # records come after the canary's commit (git keeps whole seconds)
    return settings, client


def _traffic(settings: Settings, client: Any, accuracy: dict[str, float], rows: int = 400) -> None:
    rng, labels = random.Random(7), ["balance", "transfer", "oos"]
    writer = predlog.LogWriter(lambda k, b: client.put_object(Bucket=settings.predictions_bucket, Key=k, Body=b))
    truth = []
    for version, share in accuracy.items():
        for i in range(rows):
            request = f"{version}-{i}-{uuid.uuid4().hex[:6]}"
            guess = rng.choice(labels[:2])
            truth.append((request, guess if rng.random() < share else next(x for x in labels if x != guess)))
            writer.add(
                predlog.Record(
                    request_id=request, time=predlog.now(), namespace="ctcd-staging", service=TECHNIQUE,
                    answered_by=TECHNIQUE, revision=f"rev-{version}", model_version=version, channel="",
                    inputs=[f"q {i}"], labels=[guess], confidences=[0.8], handoffs=[False], candidates=[guess],
                    latency_ms=2.0, status=200,
                )
            )  # fmt: skip
    writer.close()
    key = f"{feedback.FEEDBACK}intents/{uuid.uuid4().hex}.jsonl"
    body = "".join(f'{{"request_id": "{r}", "text": "q", "label": "{label}", "time": "t"}}\n' for r, label in truth)
    client.put_object(Bucket=settings.predictions_bucket, Key=key, Body=body.encode())


def test_a_better_canary_steps_up_with_its_evidence_and_is_never_judged_twice(world: tuple[Settings, Any]) -> None:
    settings, client = world
    _traffic(settings, client, {"1": 0.70, "2": 0.95})
    done = canary.run(settings, client, TECHNIQUE, "staging")
    assert (done.decision, done.action) == ("pass", "v2 20% -> 50%"), done
    now = promotion.current(settings.git_remote, "main", TECHNIQUE, "staging")
    assert now is not None and (now["a"]["version"], now["canary"], now["previous"]) == ("2", 50, "1")
    with gitrepo.scratch_clone(settings.git_remote, "main") as repo:
        trailers = gitrepo.trailers(repo, "HEAD")
    assert trailers["Analysis"] == "pass" and "accuracy-difference passed" in trailers["Analysis-Evidence"]
    from mlflow.tracking import MlflowClient

    evidence = MlflowClient(settings.mlflow_tracking_uri).get_run(trailers["Analysis-Run"])
    assert (
        evidence.data.tags["ctcd.kind"] == "readout" and evidence.data.metrics["intent-classifier_v2.labelled"] == 400
    )
    shown = {a.path for a in MlflowClient(settings.mlflow_tracking_uri).list_artifacts(evidence.info.run_id)}
    assert {"readout.png", "readout.json"} <= shown
    again = canary.run(settings, client, TECHNIQUE, "staging")  # the 50% step has served nothing yet
    assert again.decision == "inconclusive" and not again.commit
    assert ledger.history(settings.git_remote, "main", TECHNIQUE, "staging")[-1].source == "analysis"


def test_a_worse_canary_is_rolled_back_by_itself(world: tuple[Settings, Any]) -> None:
    settings, client = world
    _traffic(settings, client, {"1": 0.95, "2": 0.55})
    done = canary.run(settings, client, TECHNIQUE, "staging")
    assert (done.decision, done.action) == ("fail", "v2 rolled back"), done
    now = promotion.current(settings.git_remote, "main", TECHNIQUE, "staging")
    assert now is not None and (now["a"]["version"], now["canary"]) == ("1", None)
    assert canary.run(settings, client, TECHNIQUE, "staging").decision == "none"  # nothing live: nothing decided


def test_an_analysis_spec_in_git_is_read_and_a_bad_one_refused(world: tuple[Settings, Any]) -> None:
    settings, _ = world
    rules = canary.spec(settings, TECHNIQUE, "staging")
    assert rules == analysis.DEFAULT_SPEC
    with pytest.raises(analysis.AnalysisError, match="must read <figure> <op> <number>"):
        analysis.condition("__import__('os').system('true')")


def test_kill_9_mid_round_never_takes_a_decision_twice(world: tuple[Settings, Any]) -> None:
    import subprocess

    from tests.conftest import CTCD, settings_env

    settings, client = world
    _traffic(settings, client, {"1": 0.70, "2": 0.95})
    env = {
        **settings_env(settings),
        "CTCD_GIT_REMOTE": settings.git_remote,
        "CTCD_PREDICTIONS_BUCKET": settings.predictions_bucket,
    }
    for delay in (0.8, 2.5, 4.5):  # `ctcd analyze` killed at different points of its round
        round_ = subprocess.Popen(
            [*CTCD, "analyze", TECHNIQUE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        round_.kill()
        round_.wait()
    last = subprocess.run([*CTCD, "analyze", TECHNIQUE], env=env, capture_output=True, text=True, timeout=120)
    assert last.returncode == 0, last.stdout + last.stderr
    decided = [e for e in ledger.history(settings.git_remote, "main", TECHNIQUE, "staging") if e.source == "analysis"]
    assert len(decided) == 1, decided  # one step up, however many rounds were cut short
    now = promotion.current(settings.git_remote, "main", TECHNIQUE, "staging")
    assert now is not None and (now["a"]["version"], now["canary"]) == ("2", 50)


def test_a_first_canary_is_rolled_out_on_its_own_figures(platform: Settings, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    settings = platform.model_copy(
        update={"git_remote": str(remote), "predictions_bucket": f"first-{uuid.uuid4().hex[:8]}"}
    )
    client = s3_client(settings)
    client.create_bucket(Bucket=settings.predictions_bucket)
    first = overlays.Desired(TECHNIQUE, "staging", "canary", _pin("1"), canary_percent=20)
    promotion.promote(settings.git_remote, "main", first, {}, True)  # nothing before it: it takes all the traffic
    assert canary.run(settings, client, TECHNIQUE, "staging").decision == "inconclusive"  # no traffic yet
    time.sleep(1.1)
    _traffic(settings, client, {"1": 0.9}, rows=50)
    done = canary.run(settings, client, TECHNIQUE, "staging")
    assert (done.decision, done.action) == ("pass", "v1 rolled out to 100%"), done
    assert "accuracy-difference" not in done.evidence and "errors-5xx passed" in done.evidence
    now = promotion.current(settings.git_remote, "main", TECHNIQUE, "staging")
    assert now is not None and (now["a"]["version"], now["canary"]) == ("1", None)


def test_a_spec_s_interval_spaces_rounds_and_its_count_hands_the_step_to_a_person(world: tuple[Settings, Any]) -> None:
    import yaml

    settings, client = world
    rule = {
        "steps": [20, 50, 100],
        "metrics": [
            {**analysis.DEFAULT_SPEC["metrics"][0], "interval": "1h", "count": 1},
            analysis.DEFAULT_SPEC["metrics"][1],
        ],
    }
    rel = "gitops/models/intent-classifier/overlays/staging/analysis.yaml"
    with gitrepo.scratch_clone(settings.git_remote, "main") as repo:
        gitrepo.write_files(repo, {rel: yaml.safe_dump({"spec": rule})})
        gitrepo.commit(repo, "A rule with an interval", {})
        gitrepo.push_with_retry(repo, "main")
    first = canary.run(settings, client, TECHNIQUE, "staging")  # no labels yet: undecided, and count 1 is spent
    assert first.decision == "inconclusive" and "needs a person" in first.action and "count 1" in first.action
    second = canary.run(settings, client, TECHNIQUE, "staging")
    assert second.decision == "inconclusive" and "next measurement after" in second.action and not second.commit
