"""Real customer utterances end to end: CLINC150 with its own test split, two techniques of one task, a hand-off.

A user's own labelled CSV and test file (JSON Lines) go in through ``ctcd data add --test``; both intent
techniques train on that one dataset version; the gate registers them; the training workflow promotes them;
the served model hands the out-of-scope questions to a person, exactly as evaluation measured.  A fixed subset
keeps this quick (``make bench`` runs the full dataset).  The test has its own platform, so the shared one's
registry and datasets stay as the other e2e tests expect them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests import clinc150
from tests.conftest import ctcd, free_port_block, make_settings
from workflows.local import stack
from workflows.settings import Settings

pytestmark = pytest.mark.skipif(not clinc150.available(), reason="CLINC150 is not beside the project")
INTENTS, TRAIN_ROWS, TEST_ROWS = 15, 60, 20


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_settings(tmp_path_factory.mktemp("clinc"), free_port_block(), scheduler=True)
    stack.up(settings)
    yield settings
    stack.down(settings)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("clinc-files")
    train = clinc150.subset(clinc150.part("train", with_oos=True), INTENTS, TRAIN_ROWS, oos_rows=30)
    test = clinc150.subset(clinc150.part("test", with_oos=True), INTENTS, TEST_ROWS, oos_rows=60)
    test_path = folder / "test.jsonl"
    test_path.write_text("".join(json.dumps(row) + "\n" for row in test.to_dict(orient="records")))
    return {"train": clinc150.write_csv(train, folder / "train.csv"), "test": test_path, "test_frame": test}


def _wait(check: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)
    return value


def _latest_run(client: MlflowClient, technique: str) -> Any:
    experiment = client.get_experiment_by_name(technique)
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]


def test_own_test_split_is_frozen_once(own: Settings, files: dict[str, Any], tmp_path: Path) -> None:
    added = ctcd(own, "data", "add", "intent-classifier", str(files["train"]), "--test", str(files["test"]))
    assert added.returncode == 0, added.stdout + added.stderr
    listing = json.loads(ctcd(own, "data", "ls", "intent-spacy", "-o", "json").stdout)  # one task, one dataset
    assert (listing["technique"], listing["dataset"]) == ("intent-spacy", "intents")
    roles = {f["role"]: f for f in listing["files"]}
    assert roles["test"]["key"] == "intents/test/frozen.csv" and roles["test"]["rows"] == len(files["test_frame"])
    assert roles["train"]["rows"] == INTENTS * TRAIN_ROWS + 30

    again = ctcd(own, "data", "add", "intent-spacy", str(files["train"]), "--test", str(files["test"]))
    assert again.returncode != 0 and "frozen by its first collection" in again.stdout + again.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greeting"}\n[1, 2]\n')
    refused = ctcd(own, "data", "add", "intent-spacy", str(bad))
    assert refused.returncode != 0 and "line 2 is a JSON list, not an object" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_both_techniques_train_on_one_version_and_log_the_hand_off(own: Settings, files: dict[str, Any]) -> None:
    for technique in ("intent-classifier", "intent-spacy"):
        trained = ctcd(own, "retrain", technique, "--wait")
        assert trained.returncode == 0, trained.stdout + trained.stderr
    client = MlflowClient(own.mlflow_tracking_uri)
    runs = {t: _latest_run(client, t) for t in ("intent-classifier", "intent-spacy")}
    versions = {r.data.tags["ctcd.dataset_version"] for r in runs.values()}
    assert len(versions) == 1  # the same files, the same frozen split
    for technique, run in runs.items():
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        assert 0 < float(params["handoff_threshold"]) < 1
        assert 0 < metrics["test_coverage"] <= 1 and 0 <= metrics["test_oos_recall"] <= 1
        assert metrics["test_in_scope_accuracy_with_handoff"] <= metrics["test_accuracy"]  # a hand-off never adds
        assert tags["mlflow.source.name"].startswith("argo workflow ") and tags["mlflow.source.git.commit"]
        inputs = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
        assert ("intents-train", versions.copy().pop()) in inputs, technique
        assert any(name == "intents-test" for name, _ in inputs)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
        assert "evaluation/risk_coverage.png" in artifacts
    # the second technique's evaluation re-scored the first's champion on the same split, to the same figure
    rescored = runs["intent-spacy"].data.metrics["task_intent-classifier_champion_accuracy"]
    assert rescored == pytest.approx(runs["intent-classifier"].data.metrics["test_accuracy"], abs=1e-12)
    leader = runs["intent-spacy"].data.tags["ctcd.task_leader"]
    table = json.loads(ctcd(own, "models", "-o", "json").stdout)
    assert [r["technique"] for r in table if r["task"] == "intents" and r["leads"]] == [leader]
    print({t: {k: round(v, 4) for k, v in r.data.metrics.items() if k.startswith("test_")} for t, r in runs.items()})


def test_the_served_model_hands_off_what_evaluation_measured(own: Settings, files: dict[str, Any]) -> None:
    client = MlflowClient(own.mlflow_tracking_uri)
    run = _latest_run(client, "intent-classifier")
    url = f"{own.gateway_url}/v1/models/intent-classifier:predict"

    def served() -> bool:
        return httpx.post(url, json={"instances": ["hello"]}, timeout=10).status_code == 200

    _wait(served)
    test = files["test_frame"]
    reply = httpx.post(url, json={"instances": [{"text": t} for t in test["text"]]}, timeout=60)
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    handed = [p for p in predictions if p["label"] == "handoff"]
    low, out = "below the hand-off threshold", "out of scope ('oos'"
    assert handed and all((low in p["reason"] or out in p["reason"]) and p["candidate"] for p in handed)
    assert all(p["candidate"] == clinc150.OOS for p in handed if out in p["reason"])  # the model's own answer
    answered = [p for p in predictions if p["label"] != "handoff"]
    assert all(p["reason"] == "" for p in answered)
    coverage = len(answered) / len(predictions)
    oos = [p for p, label in zip(predictions, test["intent"], strict=True) if label == clinc150.OOS]
    recall = sum(p["label"] == "handoff" for p in oos) / len(oos)
    # serving answers exactly as the registered evaluation said it would, row for row
    assert coverage == pytest.approx(run.data.metrics["test_coverage"], abs=1e-9)
    assert recall == pytest.approx(run.data.metrics["test_oos_recall"], abs=1e-9)


def _services(http: httpx.Client, url: str, texts: list[str], **extra: Any) -> Counter[str]:
    """Which technique answered each utterance, one request per utterance (each must be a real answer)."""
    counts: Counter[str] = Counter()
    headers, parameters = extra.get("headers", {}), extra.get("parameters")
    for text in texts:
        body: dict[str, Any] = {"instances": [{"text": text}]}
        if parameters is not None:
            body["parameters"] = parameters
        reply = http.post(url, json=body, headers=headers)
        assert reply.status_code == 200 and len(reply.json()["predictions"]) == 1, reply.text
        counts[reply.headers["x-ctcd-service"]] += 1
    return counts


def test_the_task_graph_splits_between_techniques_and_routes_a_channel(own: Settings, files: dict[str, Any]) -> None:
    for technique in ("intent-classifier", "intent-spacy"):
        url = f"{own.gateway_url}/v1/models/{technique}:predict"
        _wait(lambda url=url: httpx.post(url, json={"instances": ["hello"]}, timeout=10).status_code == 200)
    unknown = ctcd(own, "route", "invoices", "--weights", "invoice-matcher=100")
    assert unknown.returncode != 0 and "no task 'invoices' that several techniques solve" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    weights = "intent-classifier=70,intent-spacy=30"
    routed = ctcd(own, "route", "intents", "--weights", weights, "--channel", "chat=intent-spacy")
    assert routed.returncode == 0, routed.stderr
    url = f"{own.gateway_url}/v1/models/intents:predict"
    _wait(lambda: httpx.post(url, json={"instances": ["hello"]}, timeout=10).status_code == 200)
    texts = [str(t) for t in files["test_frame"]["text"]]
    with httpx.Client(timeout=30) as http:
        split = _services(http, url, texts)
        by_header = _services(http, url, texts[:100], headers={"x-channel": "chat"})
        by_body = _services(http, url, texts[:100], parameters={"channel": "chat"})
        other_channel = _services(http, url, texts, headers={"x-channel": "web"})
    n = len(texts)
    bound = 4 * (n * 0.7 * 0.3) ** 0.5  # four standard deviations of a 70/30 binomial
    assert abs(split["intent-classifier"] - 0.7 * n) < bound and sum(split.values()) == n, split
    assert abs(other_channel["intent-classifier"] - 0.7 * n) < bound, other_channel  # an unrouted channel splits
    assert by_header == Counter({"intent-spacy": 100}) and by_body == Counter({"intent-spacy": 100})
    v2 = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [texts[0]]}]}
    oip = httpx.post(f"{own.gateway_url}/v2/models/intents/infer", json={**v2, "parameters": {"channel": "chat"}})
    assert oip.status_code == 200 and oip.headers["x-ctcd-service"] == "intent-spacy", oip.text
    assert oip.json()["model_name"] == "intent-spacy" and oip.json()["outputs"][0]["name"] == "label"
    health = httpx.get(f"{own.gateway_url}/healthz", timeout=10).json()
    assert health["status"] == "ok", health  # the graph names only services the namespace serves
    shown = json.loads(ctcd(own, "get", "ig", "intents", "-o", "json").stdout)
    assert shown["status"]["conditions"][0]["status"] == "True", shown
    assert shown["spec"]["nodes"]["root"]["routerType"] == "Switch"
    missing = ctcd(own, "get", "ig", "intents", "-n", "ctcd-production")
    assert (
        missing.returncode != 0 and 'inferencegraphs "intents" not found in namespace ctcd-production' in missing.stderr
    )
    assert "ctcd get ig -A" in missing.stderr and "Traceback" not in missing.stderr
    assert (
        json.loads(ctcd(own, "get", "isvc", "intent-spacy", "-o", "json").stdout)["metadata"]["name"] == "intent-spacy"
    )
    table = ctcd(own, "get", "ig").stdout
    assert "chat→intent-spacy" in table and "intent-classifier 70%" in table, table
    print(
        {"split": dict(split), "web": dict(other_channel), "chat header": dict(by_header), "chat body": dict(by_body)}
    )


def _logged(own: Settings) -> set[str]:
    from workflows.platform.s3 import s3_client

    s3, found = s3_client(own), set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=own.predictions_bucket, Prefix="intents/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=own.predictions_bucket, Key=item["Key"])["Body"].read()
            found |= {json.loads(line)["request_id"] for line in body.splitlines()}
    return found


def test_the_routing_survives_kill_9_of_serving(own: Settings, files: dict[str, Any]) -> None:
    url = f"{own.gateway_url}/v1/models/intents:predict"
    asked = [f"before-kill-{n}" for n in range(60)]
    with httpx.Client(timeout=30) as http:
        for n, request_id in enumerate(asked):
            if n == 30:
                _wait(lambda: set(asked[:30]) <= _logged(own), 30)  # the first half is flushed (every 2 s)
            assert (
                http.post(url, json={"instances": ["hello"]}, headers={"x-request-id": request_id}).status_code == 200
            )
    leader = {row["name"]: row["pid"] for row in stack.status(own)}["serving"]
    os.kill(leader, signal.SIGKILL)
    _wait(lambda: not {r["name"]: r for r in stack.status(own)}["serving"]["healthy"], 30)
    down = json.loads(ctcd(own, "get", "ig", "intents", "-o", "json").stdout)
    assert down["status"]["conditions"][0]["status"] == "False", down  # never Ready while nothing serves
    up = ctcd(own, "up")
    assert up.returncode == 0 and "Traceback" not in up.stdout + up.stderr, up.stdout + up.stderr
    assert stack.wait_serving(own, 120) == ""
    url = f"{own.gateway_url}/v1/models/intents:predict"
    texts = [str(t) for t in files["test_frame"]["text"]][:50]
    with httpx.Client(timeout=30) as http:
        assert _services(http, url, texts, headers={"x-channel": "chat"}) == Counter({"intent-spacy": 50})
        assert set(_services(http, url, texts)) <= {"intent-classifier", "intent-spacy"}
    shown = json.loads(ctcd(own, "get", "ig", "intents", "-o", "json").stdout)
    assert shown["status"]["conditions"][0]["status"] == "True", shown
    kept = set(asked) & _logged(own)
    assert set(asked[:30]) <= kept  # what was flushed before the kill is never lost
    print({"records lost to kill -9 of serving": len(asked) - len(kept), "of unflushed": 30})


def test_the_routing_survives_down_and_up(own: Settings, files: dict[str, Any]) -> None:
    asked = [f"before-down-{n}" for n in range(20)]
    with httpx.Client(timeout=30) as http:
        for request_id in asked:
            reply = http.post(
                f"{own.gateway_url}/v1/models/intents:predict",
                json={"instances": ["hi"]},
                headers={"x-request-id": request_id},
            )
            assert reply.status_code == 200
    down = ctcd(own, "down")  # at once: the queue is still unflushed
    assert down.returncode == 0, down.stdout + down.stderr
    up = ctcd(own, "up")
    assert up.returncode == 0 and "Traceback" not in up.stdout + up.stderr, up.stdout + up.stderr
    assert stack.wait_serving(own, 120) == ""
    url = f"{own.gateway_url}/v1/models/intents:predict"
    texts = [str(t) for t in files["test_frame"]["text"]]
    with httpx.Client(timeout=30) as http:
        assert _services(http, url, texts[:50], parameters={"channel": "chat"}) == Counter({"intent-spacy": 50})
        split = _services(http, url, texts)
    assert abs(split["intent-classifier"] - 0.7 * len(texts)) < 4 * (len(texts) * 0.21) ** 0.5, split
    assert set(asked) <= _logged(own)  # a graceful stop flushes the queue: nothing lost
    status = {row["name"]: row for row in stack.status(own)}
    assert "Synced" in status["serving"]["reason"] and "Healthy" in status["serving"]["reason"], status["serving"]
    print({"after down and up": dict(split)})


def _commit_analysis_spec(own: Settings) -> None:
    """The user's analysis spec beside the staging overlay: a coarse margin decides in a few hundred labelled rows."""
    from workflows.platform import gitrepo

    spec = {
        "steps": [20, 100],  # one step up to 100%; stepping through 50% is proven in tests/integration/test_canary.py
        "metrics": [
            {"name": "accuracy-difference", "successCondition": "low >= -0.3", "failureCondition": "high < 0"},
            {"name": "errors-5xx", "successCondition": "value <= 0.01", "failureCondition": "value > 0.05"},
        ],
    }
    rel = "gitops/models/intent-classifier/overlays/staging/analysis.yaml"
    with gitrepo.scratch_clone(own.git_remote, own.git_branch) as repo:
        assert gitrepo.write_files(repo, {rel: yaml.safe_dump({"spec": spec})})
        gitrepo.commit(repo, "Canary analysis for intent-classifier in staging", {})
        gitrepo.push_with_retry(repo, own.git_branch)


def _traffic_with_feedback(own: Settings, texts: list[str], truth: list[str], version: str) -> Counter[str]:
    """Real utterances through the gateway, then every confirmed label through POST /v1/feedback."""
    url = f"{own.gateway_url}/v1/models/intent-classifier:predict"
    _wait(lambda: httpx.post(url, json={"instances": ["hi"]}).headers.get("x-ctcd-model-version") == version, 120)
    time.sleep(1.1)  # the canary's step is judged on traffic after the second it was committed in
    served: Counter[str] = Counter()
    labels = []
    with httpx.Client(timeout=30) as http:
        for text, label in zip(texts, truth, strict=True):
            reply = http.post(url, json={"instances": [{"text": text}]})
            assert reply.status_code == 200, reply.text
            served[reply.headers["x-ctcd-model-version"]] += 1
            labels.append({"request_id": reply.headers["x-ctcd-request-id"], "label": label})
        posted = _wait(
            lambda: (r := http.post(f"{own.gateway_url}/v1/feedback", json=labels)).status_code == 200 and r, 60
        )
    assert posted.json()["labelled"] == len(labels)
    return served


def _round(own: Settings, before: int) -> dict[str, Any]:
    """The scheduler's next canary-analysis round that decided something for intent-classifier in staging."""
    from workflows.delivery import ledger

    entries = _wait(
        lambda: (
            (h := ledger.history(own.git_remote, own.git_branch, "intent-classifier", "staging"))
            and len(h) > before
            and h
        ),
        200,
    )
    return {"entry": entries[-1], "count": len(entries)}


def _kill_the_scheduler_mid_round(own: Settings) -> None:
    """kill -9 the scheduler once its next canary-analysis round has started, then bring it back with `ctcd up`."""
    from workflows.engine.state.store import RunStore

    def started() -> bool:
        return any(
            (w["metadata"].get("labels") or {}).get("workflows.argoproj.io/cron-workflow")
            == "canary-analysis-every-minute"
            and w.get("status", {}).get("phase") in ("Pending", "Running")
            for w in RunStore(own.state_dir).list()
        )

    _wait(started, 90)
    os.kill({row["name"]: row["pid"] for row in stack.status(own)}["scheduler"], signal.SIGKILL)
    up = ctcd(own, "up")
    assert up.returncode == 0, up.stdout + up.stderr


def _data(own: Settings, *args: str) -> None:
    done = ctcd(own, "data", *args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_feedback_rolls_a_worse_canary_back_and_a_better_one_out(
    own: Settings, files: dict[str, Any], tmp_path: Path
) -> None:
    from workflows.delivery import ledger, promotion
    from workflows.platform import gitrepo

    _commit_analysis_spec(own)
    cron = tmp_path / "fast.yaml"
    cron.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: canary-analysis-every-minute}\n"
        "spec:\n  concurrencyPolicy: Forbid\n  schedules: ['* * * * *']\n"
        "  workflowSpec: {workflowTemplateRef: {name: canary-analysis}}\n"
    )
    assert ctcd(own, "cron", "create", str(cron)).returncode == 0
    test = files["test_frame"][files["test_frame"]["intent"] != clinc150.OOS]
    texts, truth = [str(t) for t in test["text"]] * 3, [str(x) for x in test["intent"]] * 3
    # someone adds a batch whose labels were shuffled and retires the good one: v2 learns nothing
    train = clinc150.subset(clinc150.part("train", with_oos=True), INTENTS, TRAIN_ROWS, oos_rows=30)
    shuffled = train.assign(intent=train["intent"].sample(frac=1.0, random_state=3).to_numpy())
    _data(own, "add", "intent-classifier", str(clinc150.write_csv(shuffled, tmp_path / "shuffled.csv")))
    _data(own, "rm", "intent-classifier", "0")  # batches count from 0: the user's first file
    worse = ctcd(own, "retrain", "intent-classifier", "--wait")
    assert worse.returncode == 0 and "not-better" in worse.stderr, worse.stdout + worse.stderr
    v1, v2, v3 = "1", "2", "3"
    assert ctcd(own, "rollout", "intent-classifier").returncode == 0  # v1, training's first canary, takes it all
    assert ctcd(own, "promote", "intent-classifier", v2, "--percent", "20", "--to-main").returncode == 0
    before = len(ledger.history(own.git_remote, own.git_branch, "intent-classifier", "staging"))
    rows = [sum(_traffic_with_feedback(own, texts, truth, v2).values())]
    _kill_the_scheduler_mid_round(own)
    _round(own, before)  # the scheduler's next round, no one touching it
    rolled_back = _message(own)
    assert "Analysis: fail" in rolled_back and "accuracy-difference failed" in rolled_back, rolled_back
    now = promotion.current(own.git_remote, own.git_branch, "intent-classifier", "staging")
    assert now is not None and (now["a"]["version"], now["canary"]) == (v1, None)
    # the data is mended with more real rows; v3 goes out as a canary and the analysis takes it to 100%
    more = clinc150.subset(clinc150.part("train", with_oos=True), INTENTS, 100, oos_rows=30)
    _data(own, "add", "intent-classifier", str(clinc150.write_csv(more, tmp_path / "more.csv")), "--drop-test-overlap")
    _data(own, "rm", "intent-classifier", "1")
    better = ctcd(own, "retrain", "intent-classifier", "--wait")
    assert better.returncode == 0, better.stdout + better.stderr
    promoted = ctcd(own, "promote", "intent-classifier", v3, "--percent", "20", "--to-main")  # if the gate did not
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    count = len(ledger.history(own.git_remote, own.git_branch, "intent-classifier", "staging"))
    rows.append(sum(_traffic_with_feedback(own, texts, truth, v3).values()))
    _round(own, count)  # 20% -> rolled out, by the scheduler's round
    now = promotion.current(own.git_remote, own.git_branch, "intent-classifier", "staging")
    assert now is not None and (now["a"]["version"], now["canary"]) == (v3, None), now
    steps = [_message(own)]
    assert "Analysis: pass" in steps[0] and "Analysis-Evidence: accuracy-difference passed" in steps[0], steps
    after = ledger.history(own.git_remote, own.git_branch, "intent-classifier", "staging")[before:]
    decisions = [e for e in after if e.source == "analysis"]
    assert len(decisions) == 2, decisions  # one per step, though the scheduler was killed mid-round
    history = ctcd(own, "history", "intent-classifier", "--env", "staging").stdout
    assert history.count("analysis") >= 2, history
    with gitrepo.scratch_clone(own.git_remote, own.git_branch) as repo:
        assert gitrepo.trailers(repo, "HEAD")["Analysis"] == "pass"
    evidence = [
        next(line for line in m.splitlines() if line.startswith("Analysis-Evidence")) for m in [rolled_back, *steps]
    ]
    print({"labelled requests sent per decision": rows, "evidence": evidence})


def _message(own: Settings) -> str:
    from workflows.platform import gitrepo

    with gitrepo.scratch_clone(own.git_remote, own.git_branch) as repo:
        return gitrepo.git(repo, "log", "-1", "--format=%B").stdout
