"""GitOps to traffic on the real embedded platform: promotion commits, canary and A/B splits, rollout,
rollback by revert, and a corrupted artifact refused, all through real git, S3 and KServe servers."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.delivery import overlays, promotion
from workflows.platform import registry as reg
from workflows.settings import Settings


def status(platform: Settings) -> dict[str, Any]:
    path = platform.state_dir / "serving" / "status.json"
    return json.loads(path.read_text()) if path.exists() else {"items": []}


def isvc(platform: Settings, name: str, namespace: str = "ctcd-staging") -> dict[str, Any]:
    items = status(platform)["items"]
    return next((i for i in items if (i["metadata"]["name"], i["metadata"]["namespace"]) == (name, namespace)), {})


def traffic(platform: Settings, name: str) -> list[dict[str, Any]]:
    return isvc(platform, name).get("status", {}).get("components", {}).get("predictor", {}).get("traffic", [])


def wait_for(predicate: Any, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout}s")


def shares(platform: Settings, model: str, header: str, n: int = 1000) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    body = {"instances": ["block my credit card"]} if model.startswith("intent") else None
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            reply = client.post(f"{platform.gateway_url}/v1/models/{model}:predict", json=body or _pair())
            assert reply.status_code == 200, reply.text
            counts[reply.headers[header]] += 1
    return counts


def _pair() -> dict[str, Any]:
    return {
        "instances": [
            {
                "transfer_amount": 100.0,
                "invoice_amount": 100.0,
                "transfer_date": "2026-01-02",
                "invoice_due_date": "2026-01-01",
                "transfer_reference": "NF 1",
                "invoice_number": "1",
                "payer_name": "A",
                "customer_name": "A",
            }
        ]
    }


def pin(registry: MlflowClient, platform: Settings, name: str, version: str) -> overlays.Pin:
    return overlays.Pin(**reg.pin_fields(registry, name, version, platform.artifacts_bucket))


def test_better_training_committed_a_canary_and_serving_converged(runs: dict[str, Any], platform: Settings) -> None:
    remote = platform.git_remote
    log = ctcd(platform, "get", "isvc").stdout
    fmt = "--format=%s|%(trailers:key=Metric,valueonly,separator=)"
    lines = subprocess.run(["git", "--git-dir", remote, "log", fmt], capture_output=True, text=True).stdout
    # promotions the training workflow made carry the Metric trailer; the registry bridge and people make others
    promotions = [
        line.split("|")[0] for line in lines.splitlines() if line.startswith("Promote ") and line.split("|")[1]
    ]
    assert sorted(promotions) == [
        "Promote intent-classifier v1 to staging (canary 20%)",
        "Promote invoice-matcher v1 to staging (canary 20%)",
    ]  # none from the second run
    wait_for(
        lambda: all(
            isvc(platform, n).get("status", {}).get("conditions", [{}])[0].get("status") == "True"
            for n in ("intent-classifier", "invoice-matcher")
        )
    )
    assert traffic(platform, "intent-classifier")[0]["percent"] == 100  # the first rollout takes all traffic
    reply = httpx.post(
        f"{platform.gateway_url}/v1/models/intent-classifier:predict",
        json={"instances": ["please block my credit card"]},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["predictions"][0]["label"] == "block_credit_card"
    assert "intent-classifier" in log and "True" in log


def test_canary_20_percent_then_rollout(runs: dict[str, Any], platform: Settings, registry: MlflowClient) -> None:
    desired = overlays.Desired(
        "invoice-matcher", "staging", "canary", pin(registry, platform, "invoice-matcher", "2"), canary_percent=20
    )
    merged_at = time.monotonic()
    promotion.promote(platform.git_remote, "main", desired, {}, to_main=True)
    wait_for(lambda: len(traffic(platform, "invoice-matcher")) == 2)
    print(f"merge to canary traffic: {time.monotonic() - merged_at:.1f}s")
    split = {t["tag"]: t for t in traffic(platform, "invoice-matcher")}
    assert split["latest"]["percent"] == 20 and split["prev"]["percent"] == 80
    counts = shares(platform, "invoice-matcher", "x-ctcd-revision")
    latest = counts[split["latest"]["revisionName"]]
    assert 140 <= latest <= 260, counts  # 20% of 1,000 (binomial sd ~13)
    assert latest + counts[split["prev"]["revisionName"]] == 1000
    table = ctcd(platform, "get", "isvc", "invoice-matcher").stdout
    assert "80" in table and "20" in table and split["prev"]["revisionName"] in table

    assert ctcd(platform, "rollout", "invoice-matcher").returncode == 0
    wait_for(lambda: [t["percent"] for t in traffic(platform, "invoice-matcher")] == [100])
    assert traffic(platform, "invoice-matcher")[0]["revisionName"] == split["latest"]["revisionName"]


def test_rollback_after_a_rollout_serves_the_earlier_model_again(runs: dict[str, Any], platform: Settings) -> None:
    rolled_out = promotion.current(platform.git_remote, "main", "invoice-matcher", "staging")
    assert rolled_out is not None and rolled_out["canary"] is None  # the rollout above pinned v2 at 100%
    result = ctcd(platform, "rollback", "invoice-matcher")
    assert result.returncode == 0, result.stderr
    current = promotion.current(platform.git_remote, "main", "invoice-matcher", "staging")
    assert current is not None and current["canary"] is None
    assert current["a"]["storage_uri"] != rolled_out["a"]["storage_uri"]  # an earlier model, pinned explicitly

    def served() -> set[str]:
        state = json.loads((platform.state_dir / "serving" / "state.json").read_text())
        service = next(
            s for s in state["services"] if (s["namespace"], s["name"]) == ("ctcd-staging", "invoice-matcher")
        )
        uris = {r["name"]: r["storage_uri"] for r in service["revisions"]}
        return {uris[t["revisionName"]] for t in traffic(platform, "invoice-matcher") if t["percent"] > 0}

    wait_for(lambda: served() == {current["a"]["storage_uri"]}, 60)
    subject = subprocess.run(
        ["git", "--git-dir", platform.git_remote, "log", "-1", "--format=%s"], capture_output=True, text=True
    ).stdout
    assert subject.startswith("Roll back invoice-matcher in staging to revision")
    history = json.loads(ctcd(platform, "history", "invoice-matcher", "--env", "staging", "-o", "json").stdout)
    assert history["staging"][-1]["source"] == "rollback" and history["staging"][-1]["rollback_to"]


def test_ab_split_through_an_inference_graph(runs: dict[str, Any], platform: Settings, registry: MlflowClient) -> None:
    desired = overlays.Desired(
        "intent-classifier",
        "staging",
        "ab",
        pin(registry, platform, "intent-classifier", "1"),
        b_pin=pin(registry, platform, "intent-classifier", "2"),
        weights=(70, 30),
    )
    promotion.promote(platform.git_remote, "main", desired, {}, to_main=True)
    wait_for(
        lambda: (
            isvc(platform, "intent-classifier-b").get("status", {}).get("conditions", [{}])[0].get("status") == "True"
            and "intent-classifier-ab" in [g["metadata"]["name"] for g in status(platform)["graphs"]]
        )
    )
    counts = shares(platform, "intent-classifier-ab", "x-ctcd-service")
    assert 630 <= counts["intent-classifier"] <= 770, counts  # 70% of 1,000 (sd ~14.5)
    assert counts["intent-classifier"] + counts["intent-classifier-b"] == 1000


def test_a_corrupted_artifact_is_refused_and_gets_no_traffic(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    good = traffic(platform, "invoice-matcher")
    real = pin(registry, platform, "invoice-matcher", "1")
    tampered = overlays.Pin(real.version, real.storage_uri, "f" * 64, real.run_id, real.dataset_version)
    promotion.promote(
        platform.git_remote, "main", overlays.Desired("invoice-matcher", "staging", "full", tampered), {}, to_main=True
    )
    wait_for(lambda: isvc(platform, "invoice-matcher")["status"]["conditions"][0].get("reason") == "RevisionFailed")
    condition = isvc(platform, "invoice-matcher")["status"]["conditions"][0]
    assert condition["status"] == "False" and "refusing" in condition["message"]
    assert {t["revisionName"] for t in traffic(platform, "invoice-matcher")} <= {t["revisionName"] for t in good}
    reply = httpx.post(f"{platform.gateway_url}/v1/models/invoice-matcher:predict", json=_pair(), timeout=30)
    assert reply.status_code == 200  # still served by the good revision


def test_unknown_model_and_bad_payload_through_the_gateway(runs: dict[str, Any], platform: Settings) -> None:
    missing = httpx.post(f"{platform.gateway_url}/v1/models/nope:predict", json={"instances": ["x"]}, timeout=10)
    assert missing.status_code == 404 and "no InferenceService 'nope'" in missing.text
    bad = httpx.post(f"{platform.gateway_url}/v1/models/intent-classifier:predict", json={"instances": [1]}, timeout=10)
    assert bad.status_code == 400 and "expected a string" in bad.text


@pytest.mark.parametrize(
    "args", [["promote", "intent-classifier", "99"], ["merge", "main"], ["rollback", "fraud-detector"]]
)
def test_cli_refuses_bad_promotions_clearly(runs: dict[str, Any], platform: Settings, args: list[str]) -> None:
    result = ctcd(platform, *args)
    assert result.returncode == 1 and result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr


def test_a_killed_canary_server_loses_its_traffic_then_is_restarted(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    desired = overlays.Desired(
        "invoice-matcher", "staging", "canary", pin(registry, platform, "invoice-matcher", "2"), canary_percent=20
    )
    promotion.promote(platform.git_remote, "main", desired, {}, to_main=True)
    wait_for(lambda: len(traffic(platform, "invoice-matcher")) == 2)
    split = {t["tag"]: t["revisionName"] for t in traffic(platform, "invoice-matcher")}
    state = json.loads((platform.state_dir / "serving" / "state.json").read_text())
    revisions = {r["name"]: r for s in state["services"] for r in s["revisions"]}
    os.killpg(revisions[split["latest"]]["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    counts = shares(platform, "invoice-matcher", "x-ctcd-revision", n=200)  # every request answered 200 meanwhile
    assert set(counts) <= {split["prev"], split["latest"]}
    wait_for(lambda: _restarts(platform, split["latest"]) >= 1, 30)
    wait_for(lambda: sorted(t["percent"] for t in traffic(platform, "invoice-matcher")) == [20, 80], 60)
    print(f"killed canary server back with its 20%: {time.monotonic() - killed_at:.1f}s")
    assert {t["revisionName"] for t in traffic(platform, "invoice-matcher")} == set(split.values())


def _restarts(platform: Settings, revision: str) -> int:
    state = json.loads((platform.state_dir / "serving" / "state.json").read_text())
    return next(int(r["restarts"]) for s in state["services"] for r in s["revisions"] if r["name"] == revision)


def test_answers_land_in_the_prediction_log_in_s3(runs: dict[str, Any], platform: Settings) -> None:
    from workflows.platform.s3 import s3_client

    url = f"{platform.gateway_url}/v1/models/intent-classifier:predict"
    ids = []
    with httpx.Client(timeout=30) as client:
        for i in range(20):
            reply = client.post(url, json={"instances": [f"block my card {i}"]}, headers={"x-request-id": f"e2e-{i}"})
            assert reply.status_code == 200 and reply.headers["x-ctcd-request-id"] == f"e2e-{i}"
            ids.append(f"e2e-{i}")
    s3 = s3_client(platform)

    def logged() -> dict[str, dict[str, Any]]:
        listing = s3.list_objects_v2(Bucket=platform.predictions_bucket, Prefix="intent-classifier/ctcd-staging/")
        found = {}
        for item in listing.get("Contents", []):
            for line in s3.get_object(Bucket=platform.predictions_bucket, Key=item["Key"])["Body"].read().splitlines():
                record = json.loads(line)
                found[record["request_id"]] = record
        return found

    wait_for(lambda: set(ids) <= set(logged()), timeout=30)  # flushed within seconds, off the request path
    record = logged()["e2e-0"]
    assert record["inputs"] == ["block my card 0"] and record["status"] == 200 and record["model_version"]
    assert record["labels"] and 0 <= record["confidences"][0] <= 1 and record["answered_by"] == "intent-classifier"
