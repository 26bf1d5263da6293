"""The registry bridge running next to the real platform: registry changes become commits, git changes flow
back into the registry, and webhook deliveries are verified."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import httpx
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.delivery import bridge, promotion, webhook
from workflows.platform import gitrepo
from workflows.settings import Settings


def eventually(predicate: Any, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def pinned(platform: Settings, name: str, env: str) -> str:
    doc = promotion.current(platform.git_remote, "main", name, env)
    return str(doc["a"]["version"]) if doc else ""


def test_a_stage_change_in_the_registry_becomes_a_commit(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    registry.transition_model_version_stage("intent-classifier", "2", "Staging", archive_existing_versions=True)
    eventually(lambda: pinned(platform, "intent-classifier", "staging") == "2")
    with gitrepo.scratch_clone(platform.git_remote, "main") as repo:
        last = gitrepo.git(
            repo, "log", "-1", "--format=%H", "--", "gitops/models/intent-classifier/overlays/staging/version.yaml"
        ).stdout.strip()
        trailers = gitrepo.trailers(repo, last)
    assert trailers["Promoted-By"] == "registry-bridge" and trailers["MLflow-Version"] == "2"


def test_an_alias_change_proposes_a_production_branch_and_the_merge_promotes(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    before = pinned(platform, "invoice-matcher", "production")
    registry.set_registered_model_alias("invoice-matcher", "production", "2")
    branch = "promote/production/invoice-matcher/v2"

    def proposed() -> bool:
        out = subprocess.run(
            ["git", "--git-dir", platform.git_remote, "branch", "--list", branch], capture_output=True, text=True
        )
        return branch in out.stdout

    eventually(proposed)
    assert pinned(platform, "invoice-matcher", "production") == before  # production waits for a human merge
    eventually(lambda: registry.get_model_version("invoice-matcher", "2").tags.get("ctcd.pending", "") != "")
    assert f"`ctcd merge {branch}`" in registry.get_model_version("invoice-matcher", "2").tags["ctcd.pending"]
    aliases = registry.get_registered_model("invoice-matcher").aliases
    assert aliases.get("production", "") == before  # the marker shows what serves, not what was asked
    merged = ctcd(platform, "merge", branch)
    assert merged.returncode == 0, merged.stderr
    assert pinned(platform, "invoice-matcher", "production") == "2"
    eventually(lambda: registry.get_registered_model("invoice-matcher").aliases.get("production") == "2")
    eventually(lambda: "ctcd.pending" not in registry.get_model_version("invoice-matcher", "2").tags)
    log = (platform.state_dir / "logs" / "bridge.log").read_text()
    assert "webhook model_version_alias.created" in log  # the alias change arrived as a verified webhook


def test_when_git_moves_first_the_registry_follows(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    eventually(lambda: pinned(platform, "invoice-matcher", "production") == "2")
    promoted = ctcd(
        platform, "promote", "invoice-matcher", "1", "--env", "production", "--strategy", "full", "--to-main"
    )
    assert promoted.returncode == 0, promoted.stderr
    eventually(lambda: registry.get_model_version_by_alias("invoice-matcher", "production").version == "1")
    docs = {
        env: promotion.current(platform.git_remote, "main", "invoice-matcher", env) for env in ("staging", "production")
    }
    eventually(lambda: bridge.disagreeing(registry, "invoice-matcher", docs) == [])
    assert not any(tag.startswith("ctcd.bridge") for tag in registry.get_registered_model("invoice-matcher").tags)
    state = platform.state_dir / "bridge-state.json"  # written at the end of the pass that aligned the registry
    eventually(lambda: json.loads(state.read_text())["invoice-matcher"]["pinned"]["production"] == "1")


def test_webhooks_with_a_bad_signature_are_refused(runs: dict[str, Any], platform: Settings) -> None:
    url = f"http://127.0.0.1:{platform.bridge_port}/webhooks/mlflow"
    payload = json.dumps({"entity": "model_version_alias", "action": "created", "data": {}})
    stamp, delivery = str(int(time.time())), str(uuid.uuid4())
    secret = (platform.state_dir / "webhook-secret").read_text().strip()
    good = {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": webhook.sign(secret, delivery, stamp, payload),
    }
    forged = {**good, "X-MLflow-Signature": webhook.sign("not-the-secret", delivery, stamp, payload)}
    stale = {**good, "X-MLflow-Timestamp": str(int(time.time()) - 3600)}
    for headers, expected in (
        (forged, "signature does not match"),
        ({}, "missing X-MLflow-Signature"),
        (stale, "replay"),
    ):
        reply = httpx.post(url, content=payload, headers=headers, timeout=10)
        assert reply.status_code == 401 and expected in reply.text
    assert httpx.post(url, content=payload, headers=good, timeout=10).status_code == 200
    tampered = httpx.post(url, content=payload.replace("created", "deleted"), headers=good, timeout=10)
    assert tampered.status_code == 401


def test_the_cluster_cronworkflow_runs_the_same_sync_locally(runs: dict[str, Any], platform: Settings) -> None:
    result = ctcd(platform, "submit", "--from", "cronworkflow/registry-sync", "--wait", "-o", "name")
    assert result.returncode == 0, result.stdout + result.stderr
    name = result.stdout.strip().splitlines()[-1]
    record = json.loads(ctcd(platform, "runs", "get", name, "-o", "json").stdout)
    pod = next(n for n in record["status"]["nodes"].values() if n["type"] == "Pod")
    actions = json.loads(pod["outputs"]["result"])
    assert {(a["technique"], a["environment"]) for a in actions} >= {("intent-classifier", "staging")}
    assert all(a["kind"] != "error" for a in actions)


def test_on_a_cluster_the_bridge_state_is_an_s3_object(platform: Settings) -> None:
    from workflows.delivery import bridge_state

    where = f"s3://{platform.artifacts_bucket}/ctcd-bridge/test-{uuid.uuid4().hex}.json"
    store = bridge_state.store(platform.model_copy(update={"bridge_state": where}))
    assert isinstance(store, bridge_state.S3Store) and store.load() == {}
    seen = {"intent-classifier/production": {"alias": ["2", 1], "stage": ["2", 5], "git": ["2", 1]}}
    store.save(seen)
    assert store.load() == seen
