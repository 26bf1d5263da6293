"""Living with the platform: every service restarted and killed -9 in the middle of work, then ``ctcd up``.

Each case keeps prediction traffic flowing through the gateway, breaks one service (or all of them), checks that
``ctcd status`` tells the truth while it is broken, runs ``ctcd up`` and then asserts what a user relies on:

- every service is healthy and serving answers from the revisions git pins;
- git, the registry and serving agree;
- no run is stuck and no lock is held;
- no S3 object and no git commit was lost, changed or duplicated, and no registry version appeared.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.delivery import bridge, overlays, promotion
from workflows.engine.state.store import RunStore
from workflows.local import stack, supervisor
from workflows.platform.gitrepo import git
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

TECHNIQUES = ("intent-classifier", "invoice-matcher")
RECOVERY: dict[str, float] = {}  # case -> seconds from `ctcd up` to every check passing, printed at the end


def _status(platform: Settings) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(ctcd(platform, "status", "-o", "json").stdout)}


def _wait(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")


def _instances(technique: str) -> dict[str, Any]:
    if technique == "intent-classifier":
        return {"instances": ["block my credit card"]}
    row = {
        "transfer_amount": 120.0,
        "invoice_amount": 120.0,
        "transfer_date": "2026-02-03",
        "invoice_due_date": "2026-02-01",
        "transfer_reference": "NF 991",
        "invoice_number": "991",
        "payer_name": "ACME",
        "customer_name": "Acme Ltda",
    }
    return {"instances": [row]}


class Traffic:
    """Predictions sent through the gateway in a thread, counted by status code (0: no answer)."""

    def __init__(self, platform: Settings) -> None:
        self.url, self.codes, self.stop = platform.gateway_url, Counter[int](), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                for technique in TECHNIQUES:
                    try:
                        url = f"{self.url}/v1/models/{technique}:predict"
                        self.codes[client.post(url, json=_instances(technique)).status_code] += 1
                    except httpx.HTTPError:
                        self.codes[0] += 1
                        time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _objects(settings: Settings) -> dict[str, str]:
    client, found = s3_client(settings), {}
    for bucket in (settings.datasets_bucket, settings.artifacts_bucket):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.update({f"{bucket}/{o['Key']}": o["ETag"] for o in page.get("Contents", [])})
    return found


def _commits(settings: Settings) -> list[str]:
    out = git(settings.state_dir, "--git-dir", settings.git_remote, "log", "--format=%H", settings.git_branch)
    return out.stdout.split()


def _versions(settings: Settings) -> int:
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    return sum(len(client.search_model_versions(f"name = '{t}'")) for t in TECHNIQUES)


def _snapshot(settings: Settings) -> dict[str, Any]:
    return {"objects": _objects(settings), "commits": _commits(settings), "versions": _versions(settings)}


def _served(settings: Settings) -> dict[str, Any]:
    path = settings.state_dir / "serving" / "status.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _agree(settings: Settings) -> bool:
    """Serving runs main's commit with the pinned models, and the registry's stages follow git's pins."""
    head = _commits(settings)[0]
    served = _served(settings)
    if served.get("commit") != head:
        return False
    state = json.loads((settings.state_dir / "serving" / "state.json").read_text())
    latest = {
        (s["namespace"], s["name"]): s["revisions"][-1]["storage_uri"] for s in state["services"] if s["revisions"]
    }
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    pins = promotion.pinned(settings.git_remote, settings.git_branch)
    for (technique, env), pin in pins.items():
        if isinstance(pin, Exception):
            return False
        if latest.get((overlays.NAMESPACE[env], technique)) != pin["a"]["storage_uri"]:
            return False
    for technique in {t for t, _ in pins}:
        docs = {env: pins.get((technique, env)) for env in overlays.ENVIRONMENTS}
        if bridge.disagreeing(client, technique, docs):  # the registry shows exactly what serves
            return False
    return True


def _answers_from_pinned(settings: Settings) -> None:
    with httpx.Client(timeout=10) as client:
        for item in _served(settings)["items"]:
            name, url = item["metadata"]["name"], item["status"]["address"]["url"]
            split = item["status"]["components"]["predictor"]["traffic"]
            allowed = {t["revisionName"] for t in split if t["percent"] > 0}
            for _ in range(10):
                reply = client.post(url, json=_instances(name.removesuffix("-b")))
                assert reply.status_code == 200, reply.text
                assert reply.headers["x-ctcd-revision"] in allowed


def _no_lock_held(settings: Settings) -> None:
    for path in (settings.state_dir / "locks").glob("*"):
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError while anything holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _no_run_stuck(settings: Settings) -> None:
    listed = json.loads(ctcd(settings, "runs", "list", "-o", "json").stdout)
    stuck = [w["metadata"]["name"] for w in listed if w["status"].get("phase") in ("Running", "Pending")]
    assert not stuck, stuck


def _leaders(settings: Settings) -> dict[str, int]:
    return {row["name"]: row["pid"] for row in stack.status(settings)}


def _revision_pids(settings: Settings) -> list[int]:
    state = json.loads((settings.state_dir / "serving" / "state.json").read_text())
    return [r["pid"] for s in state["services"] for r in s["revisions"] if r["state"] == "Ready" and r["pid"]]


def _kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


@pytest.fixture(scope="module")
def settled(runs: dict[str, Any], platform: Settings) -> Iterator[Settings]:
    """The session platform after training, once serving and the bridge agree; the figures printed at the end."""
    assert stack.wait_serving(platform, 120) == ""
    _wait(lambda: _agree(platform), 60, "git, registry and serving to agree")
    yield platform
    print("\nrecovery (ctcd up -> every check passes): " + ", ".join(f"{k} {v:.1f}s" for k, v in RECOVERY.items()))


def _recover_and_check(settings: Settings, case: str, before: dict[str, Any], extra_ok: bool = False) -> None:
    started = time.monotonic()
    result = ctcd(settings, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _wait(lambda: all(r["healthy"] for r in _status(settings).values()), 90, "every service healthy")
    _wait(lambda: _agree(settings), 60, "git, registry and serving to agree")
    RECOVERY[case] = time.monotonic() - started
    _answers_from_pinned(settings)
    _no_run_stuck(settings)
    _no_lock_held(settings)
    after = _snapshot(settings)
    lost = {k: v for k, v in before["objects"].items() if after["objects"].get(k) != v}
    assert not lost, f"S3 objects lost or changed: {sorted(lost)[:5]}"
    if not extra_ok:
        assert after["objects"] == before["objects"]
        assert after["versions"] == before["versions"]
    assert after["commits"] == before["commits"]


CASES = ["s3", "mlflow", "bridge", "serving"]


@pytest.mark.parametrize("service", CASES)
def test_graceful_restart_of_each_service(settled: Settings, service: str) -> None:
    before = _snapshot(settled)
    with Traffic(settled) as traffic:
        assert stack.down(settled, only=(service,)) == [service]
        row = _status(settled)[service]
        assert row["state"] == "stopped" and not row["healthy"] and "ctcd up" in row["reason"]
        if service == "serving":  # get isvc must not claim Ready while nothing serves
            items = json.loads(ctcd(settled, "get", "isvc", "-o", "json").stdout)["items"]
            assert {i["status"]["conditions"][0]["status"] for i in items} == {"False"}
        _recover_and_check(settled, f"restart {service}", before)
    print(f"restart {service}: traffic by status code {dict(traffic.codes)}")
    if service == "mlflow":  # the webhook secret still decrypts: the bridge's webhook list answers
        reply = httpx.get(f"{settled.mlflow_tracking_uri}/api/2.0/mlflow/webhooks", timeout=10)
        assert reply.status_code == 200, reply.text
        key = settled.state_dir / "mlflow-webhook-key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("service", CASES)
def test_kill_9_of_each_service_under_traffic(settled: Settings, service: str) -> None:
    before = _snapshot(settled)
    leader = _leaders(settled)[service]
    assert leader
    with Traffic(settled) as traffic:
        _kill9([leader])
        _wait(lambda: not _status(settled)[service]["healthy"], 10, f"status to report {service} down")
        row = _status(settled)[service]
        assert row["state"] in ("stopped", "orphaned") and row["reason"], row
        if service == "serving":
            items = json.loads(ctcd(settled, "get", "isvc", "-o", "json").stdout)["items"]
            assert {i["status"]["conditions"][0]["reason"] for i in items} == {"ServingDown"}
        _recover_and_check(settled, f"kill -9 {service}", before)
    print(f"kill -9 {service}: traffic by status code {dict(traffic.codes)}")
    members = supervisor.tree(settled.state_dir / "pids", service).members
    assert all(p.pid != leader for p in members)


def test_kill_9_of_a_revision_server_is_restarted_from_its_cache(settled: Settings) -> None:
    before = _snapshot(settled)
    victims = _revision_pids(settled)
    assert victims
    with Traffic(settled) as traffic:
        _kill9(victims)
        took = _wait(
            lambda: stack.wait_serving(settled, 0.1) == "" and not set(victims) & set(_revision_pids(settled)), 60
        )
        RECOVERY["kill -9 revision servers"] = took
        _recover_and_check(settled, "kill -9 revision servers (then up)", before)
    print(f"kill -9 revision servers: back in {took:.1f}s; traffic {dict(traffic.codes)}")


def test_kill_9_of_everything_mid_training_then_up(settled: Settings) -> None:
    before = _snapshot(settled)
    submitted = ctcd(
        settled, "submit", "--from", "workflowtemplate/train", "-p", "technique=invoice-matcher", "-o", "name"
    )
    name = submitted.stdout.strip().splitlines()[-1]
    store = RunStore(settled.state_dir)
    _wait(lambda: any(n["templateName"] == "train" for n in store.load(name)["status"]["nodes"].values()), 120)
    with Traffic(settled) as traffic:
        everything = [int(pid) for row in stack.status(settled) for pid in row["pids"]]  # type: ignore[attr-defined]
        worker = json.loads((store.run_dir(name) / "worker.json").read_text())["pid"]
        _kill9([*everything, worker])
        _wait(lambda: not any(r["healthy"] for r in _status(settled).values()), 15, "status to report all down")
        _recover_and_check(settled, "kill -9 everything", before, extra_ok=True)
    print(f"kill -9 everything: traffic by status code {dict(traffic.codes)}")
    run = store.load(name)
    assert run["status"]["phase"] == "Error" and "engine worker exited" in run["status"]["message"]
    # `down` after all that leaves nothing behind: no process of any service, no model server listening
    state = json.loads((settled.state_dir / "serving" / "state.json").read_text())
    ports = [r["port"] for s in state["services"] for r in s["revisions"] if r["state"] == "Ready"]
    services = ("s3", "mlflow", "serving", "bridge")
    assert set(stack.down(settled)) == set(services)
    assert all(supervisor.tree(settled.state_dir / "pids", s).members == [] for s in services)
    listening = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert not set(ports) & listening, "a model server still listens after down"
    _recover_and_check(settled, "down, then up", _snapshot_after_up(settled))


def _snapshot_after_up(settings: Settings) -> dict[str, Any]:
    stack.up(settings)
    _wait(lambda: stack.wait_serving(settings, 0.1) == "", 90)
    return _snapshot(settings)
