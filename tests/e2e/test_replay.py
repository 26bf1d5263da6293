"""Serving is exactly git: a production promotion history of nine commits (full, canary, rollout, A/B, canary,
three rollbacks) replayed against the real platform; after each commit, the split measured over 400 requests
through the gateway matches what the version file pins, and `get isvc` says Synced and Healthy on that commit."""

from __future__ import annotations

import collections
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.delivery import observed, overlays, promotion, rollback
from workflows.platform import registry as reg
from workflows.settings import Settings

NAME, ENV, NAMESPACE = "intent-classifier", "production", "ctcd-production"
REQUESTS = 400  # 5 standard deviations of a 20% share are 40 requests: far from any other pinned split
CONVERGENCE: dict[str, list[float]] = collections.defaultdict(list)  # read by the closing-note figures


def _serving(platform: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    root = platform.state_dir / "serving"
    return json.loads((root / "status.json").read_text()), json.loads((root / "state.json").read_text())


def _uri_of_revision(state: dict[str, Any]) -> dict[str, str]:
    return {
        f"{s['namespace']}/{r['name']}": r["storage_uri"]
        for s in state["services"]
        if s["namespace"] == NAMESPACE
        for r in s["revisions"]
    }


def measure(platform: Settings, model: str, version_of: dict[str, str]) -> collections.Counter[str]:
    """Send REQUESTS predictions through the gateway's path form; count the answers per model version."""
    _, state = _serving(platform)
    uri_of = _uri_of_revision(state)
    counts: collections.Counter[str] = collections.Counter()
    url = f"{platform.gateway_url}/namespaces/{NAMESPACE}/v1/models/{model}:predict"
    with httpx.Client(timeout=30) as client:
        for _ in range(REQUESTS):
            reply = client.post(url, json={"instances": ["block my credit card"]})
            assert reply.status_code == 200, reply.text
            service, revision = reply.headers["x-ctcd-service"], reply.headers["x-ctcd-revision"]
            uri = (
                uri_of.get(f"{NAMESPACE}/{revision}")
                or _uri_of_revision(_serving(platform)[1])[f"{NAMESPACE}/{revision}"]
            )
            counts[version_of[uri]] += 1
            assert service.startswith(NAME)
    return counts


def converged(platform: Settings, head: str) -> bool:
    try:
        status, _ = _serving(platform)
    except (OSError, ValueError):
        return False
    items = [i for i in status["items"] if i["metadata"]["namespace"] == NAMESPACE]
    return (
        status.get("commit") == head
        and not status.get("error")
        and all(i["status"]["conditions"][0]["status"] == "True" for i in items)
        and all(sum(t["percent"] for t in i["status"]["components"]["predictor"]["traffic"]) == 100 for i in items)
    )


def wait(predicate: Callable[[], bool], timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"serving did not converge within {timeout}s")


def within(counts: collections.Counter[str], expected: dict[str, int]) -> bool:
    """Each version's share within 5 standard deviations of its pinned percent (and nothing else answered)."""
    if set(counts) - {v for v, p in expected.items() if p > 0}:
        return False
    for version, percent in expected.items():
        p = percent / 100
        slack = 5 * (REQUESTS * p * (1 - p)) ** 0.5 + 1
        if abs(counts[version] - REQUESTS * p) > slack:
            return False
    return True


def test_a_promotion_history_replays_into_exactly_the_pinned_splits(
    runs: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    v1, v2 = (overlays.Pin(**reg.pin_fields(registry, NAME, v, platform.artifacts_bucket)) for v in ("1", "2"))
    version_of = {v1.storage_uri: "1", v2.storage_uri: "2"}
    remote = platform.git_remote

    def commit(desired: overlays.Desired) -> None:
        promotion.promote(remote, "main", desired, {"Source": "cli"}, to_main=True)

    moves: list[tuple[str, Callable[[], object], str, dict[str, int]]] = [
        ("full v1", lambda: commit(overlays.Desired(NAME, ENV, "full", v1)), NAME, {"1": 100}),
        ("canary v2 20%", lambda: commit(overlays.Desired(NAME, ENV, "canary", v2, canary_percent=20)), NAME,
         {"1": 80, "2": 20}),
        ("rollout", lambda: promotion.rollout(remote, "main", NAME, ENV), NAME, {"2": 100}),
        ("A/B v1 70 / v2 30", lambda: commit(overlays.Desired(NAME, ENV, "ab", v1, b_pin=v2, weights=(70, 30))),
         f"{NAME}-ab", {"1": 70, "2": 30}),
        ("full v2", lambda: commit(overlays.Desired(NAME, ENV, "full", v2)), NAME, {"2": 100}),
        ("canary v1 30%", lambda: commit(overlays.Desired(NAME, ENV, "canary", v1, canary_percent=30)), NAME,
         {"2": 70, "1": 30}),
        ("rollback", lambda: rollback.rollback(remote, "main", NAME, ENV), NAME, {"2": 100}),
        ("second rollback", lambda: rollback.rollback(remote, "main", NAME, ENV), f"{NAME}-ab", {"1": 70, "2": 30}),
        ("third rollback", lambda: rollback.rollback(remote, "main", NAME, ENV), NAME, {"2": 100}),
    ]  # fmt: skip
    measured = []
    for label, move, model, expected in moves:
        move()
        head = observed.head(platform)
        CONVERGENCE["git commit"].append(wait(functools.partial(converged, platform, head)))
        counts = measure(platform, model, version_of)
        measured.append((label, dict(counts)))
        assert within(counts, expected), f"after {label}: measured {dict(counts)}, pinned {expected}; {measured}"
        listed = json.loads(ctcd(platform, "get", "isvc", "-n", NAMESPACE, "-o", "json").stdout)["items"]
        for item in listed:
            assert item["status"]["delivery"]["sync"] == "Synced", item["status"]["delivery"]
            assert item["status"]["delivery"]["commit"] == head
            assert item["status"]["delivery"]["health"] == "Healthy"
    seconds = sorted(CONVERGENCE["git commit"])
    print(f"convergence after a commit: median {seconds[len(seconds) // 2]:.2f}s, worst {seconds[-1]:.2f}s")
    history = json.loads(ctcd(platform, "history", NAME, "--env", ENV, "-o", "json").stdout)[ENV]
    assert [e["source"] for e in history[-3:]] == ["rollback"] * 3
    assert len(history) >= len(moves)


def test_a_commit_serving_cannot_apply_is_out_of_sync_with_the_reason(runs: dict[str, Any], platform: Settings) -> None:
    from workflows.platform import gitrepo

    with gitrepo.scratch_clone(platform.git_remote, "main") as repo:
        bad = repo / "gitops" / "models" / NAME / "overlays" / ENV / "kustomization.yaml"
        good = bad.read_text()
        bad.write_text(good + "\nresources: [missing.yaml]\n")
        gitrepo.git(repo, "commit", "-qam", "break production's overlay")
        gitrepo.git(repo, "push", "-q", "origin", "HEAD:main")
        head = gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
        wait(lambda: _serving(platform)[0].get("commit") == head)
        listed = ctcd(platform, "get", "isvc", "-A")
        assert "OutOfSync" in listed.stdout and f"cannot apply {head[:12]}" in listed.stdout, listed.stdout
        status = json.loads(ctcd(platform, "status", "-o", "json").stdout)
        serving = next(r for r in status if r["name"] == "serving")
        assert "OutOfSync" in serving["reason"] and "cannot apply" in serving["reason"]
        answered = httpx.post(
            f"{platform.gateway_url}/namespaces/{NAMESPACE}/v1/models/{NAME}:predict",
            json={"instances": ["block my credit card"]},
            timeout=30,
        )
        assert answered.status_code == 200  # what ran before keeps serving
        bad.write_text(good)
        gitrepo.git(repo, "commit", "-qam", "mend production's overlay")
        gitrepo.git(repo, "push", "-q", "origin", "HEAD:main")
        mended = gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
    wait(lambda: converged(platform, mended))
    assert "OutOfSync" not in ctcd(platform, "get", "isvc", "-A").stdout
