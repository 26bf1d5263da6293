"""A model-based test of the whole delivery loop on the real platform (MLflow, a git remote, local serving, the
bridge): hypothesis draws sequences of the moves users make, and after each one, once things are quiet, the
registry markers, git's pins and serving agree for every technique and environment; the ledger lost and
duplicated nothing; and main's history only grew.

Moves: the REST calls the MLflow UI makes (stage transitions, alias set and delete); a user's plain git merge of a
promotion branch, or a revert, pushed; ``ctcd promote/rollout/rollback/merge``; a training run.  `make test`
runs two short sequences, the same every run (the first is the simplest hypothesis draws); `make fuzz`
runs CTCD_LOOP_SEQUENCES (20) random ones of CTCD_LOOP_MOVES (30).
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.delivery import bridge, ledger, observed, overlays, promotion
from workflows.platform import gitrepo
from workflows.settings import Settings

TECHNIQUES = ("intent-classifier", "invoice-matcher")
SEQUENCES = int(os.environ.get("CTCD_LOOP_SEQUENCES", "2"))  # the first is the simplest hypothesis draws
MOVES = int(os.environ.get("CTCD_LOOP_MOVES", "5"))
TRAININGS = int(os.environ.get("CTCD_LOOP_TRAININGS", "0"))  # per sequence (make fuzz: 2); a run takes ~40 s
QUIET_SECONDS = 3.5  # one bridge interval with nothing moving
CONVERGENCE: dict[str, list[float]] = collections.defaultdict(list)
PLATFORM: list[Settings] = []


def served_uri(state: dict[str, Any], item: dict[str, Any]) -> str:
    """The storage URI of the revision an InferenceService's latest traffic goes to."""
    traffic: list[dict[str, Any]] = item["status"]["components"]["predictor"]["traffic"]
    latest: dict[str, Any] = next((t for t in traffic if t.get("latestRevision")), {})
    service: dict[str, Any] = next(
        (s for s in state["services"] if (s["namespace"], s["name"]) == (item["metadata"]["namespace"],
                                                                        item["metadata"]["name"])),
        {"revisions": []},
    )  # fmt: skip
    return next((r["storage_uri"] for r in service["revisions"] if r["name"] == latest.get("revisionName")), "")


def branches(platform: Settings) -> list[str]:
    out = gitrepo.git(platform.state_dir, "ls-remote", "--heads", "--", platform.git_remote, "refs/heads/promote/*")
    return [line.split("refs/heads/", 1)[1] for line in out.stdout.splitlines() if "refs/heads/" in line]


def disagreements(platform: Settings, client: MlflowClient) -> list[str]:
    """What does not agree right now ([] when registry, git and serving say the same everywhere)."""
    head = observed.head(platform)
    root = platform.state_dir / "serving"
    try:
        status = json.loads((root / "status.json").read_text())
        state = json.loads((root / "state.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"serving status unreadable: {exc}"]
    problems = [] if status.get("commit") == head and not status.get("error") else [f"serving not on {head[:12]}"]
    items = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in status["items"]}
    pinned = promotion.pinned(platform.git_remote, "main")
    for technique in TECHNIQUES:
        docs = {}
        for environment in overlays.ENVIRONMENTS:
            pins = pinned.get((technique, environment))
            if isinstance(pins, Exception):
                problems.append(f"{environment}/{technique}: {pins}")
                continue
            problems += _serving_problems(state, items, technique, environment, pins)
            docs[environment] = pins
        wrong = bridge.disagreeing(client, technique, docs)  # never ahead of serving, pending or not
        if wrong:
            problems.append(f"{technique}: the registry shows {wrong}, git serves otherwise")
    return problems


def _serving_problems(
    state: dict[str, Any],
    items: dict[tuple[str, str], Any],
    technique: str,
    environment: str,
    pins: dict[str, Any] | None,
) -> list[str]:
    namespace, found = overlays.NAMESPACE[environment], []
    if pins is None:
        return [f"{namespace}/{technique} still served, git pins nothing"] if (namespace, technique) in items else []
    wanted = [(technique, pins["a"]["storage_uri"])]
    if pins.get("b"):
        wanted.append((f"{technique}-b", pins["b"]["storage_uri"]))
    for name, uri in wanted:
        item = items.get((namespace, name))
        if item is None or item["status"]["conditions"][0]["status"] != "True":
            found.append(f"{namespace}/{name} not Ready")
        elif served_uri(state, item) != uri:
            found.append(f"{namespace}/{name} serves {served_uri(state, item)}, git pins {uri}")
    return found


ALIASES = ["champion", "staging", "production"]


class DeliveryLoop(RuleBasedStateMachine):
    """The moves, and after each the wait for quiet and the checks."""

    def __init__(self) -> None:
        super().__init__()
        self.platform = PLATFORM[0]
        self.client = MlflowClient(tracking_uri=self.platform.mlflow_tracking_uri)
        self.ui = httpx.Client(base_url=self.platform.mlflow_tracking_uri + "/ajax-api/2.0/mlflow", timeout=30)
        self.head = observed.head(self.platform)
        self.made: list[tuple[str, str, str]] = []  # (technique, environment, commit) this test put on main
        self.trained = 0

    # --- helpers ------------------------------------------------------------------------------

    def version(self, technique: str, pick: int) -> str:
        count = len(self.client.search_model_versions(f"name = '{technique}'"))
        return str(1 + pick % max(count, 1))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = ctcd(self.platform, *args)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode in (0, 1), result.stderr  # 1: refused, with the reason said
        if result.returncode == 1:
            assert result.stderr.strip().startswith("error:"), result.stderr
        return result

    def mark(self, technique: str, environment: str, before: str) -> None:
        """Remember the commit a move of ours just put on main (if it did)."""
        now = observed.head(self.platform)
        if now != before:
            self.made.append((technique, environment, now))

    def settle(self, kind: str) -> None:
        """Wait until everything agrees and stays so for a bridge interval; record how long it took."""
        start, problems = time.monotonic(), ["not checked yet"]
        while time.monotonic() - start < 60:
            problems = disagreements(self.platform, self.client)
            if not problems:
                break
            time.sleep(0.25)
        assert not problems, f"after {kind}: {problems}"
        CONVERGENCE[kind].append(time.monotonic() - start)
        head = observed.head(self.platform)
        time.sleep(QUIET_SECONDS)
        assert disagreements(self.platform, self.client) == [], f"after {kind}: moved again once quiet"
        assert observed.head(self.platform) == head, f"after {kind}: a commit landed once quiet (ping-pong?)"
        self.check_history()

    def check_history(self) -> None:
        head = observed.head(self.platform)
        ancestor = gitrepo.git(
            self.platform.state_dir, "--git-dir", self.platform.git_remote, "merge-base", "--is-ancestor",
            self.head, head, check=False,
        )  # fmt: skip
        assert ancestor.returncode == 0, f"main lost history: {self.head[:12]} is not an ancestor of {head[:12]}"
        self.head = head
        for technique in TECHNIQUES:
            for environment in overlays.ENVIRONMENTS:
                entries = ledger.history(self.platform.git_remote, "main", technique, environment)
                commits = {e.commit for e in entries}
                for made_technique, made_env, commit in self.made:
                    if (made_technique, made_env) == (technique, environment) and self.pins_at(
                        commit, technique, made_env
                    ):
                        assert commit in commits, f"{environment}/{technique}: commit {commit[:12]} missing"
                assert len(commits) == len(entries), f"{environment}/{technique}: a commit is listed twice"
                for earlier, later in zip(entries, entries[1:], strict=False):
                    if later.source == "registry":  # the bridge never commits what is pinned already
                        assert earlier.pins != later.pins, f"{environment}/{technique}: {later.revision} repeats"

    def pins_at(self, commit: str, technique: str, environment: str) -> bool:
        """Whether the environment's version file exists at ``commit`` (a revert can remove it: no ledger entry)."""
        path = f"{commit}:{ledger.version_path(technique, environment)}"
        found = gitrepo.git(self.platform.state_dir, "--git-dir", self.platform.git_remote, "cat-file", "-e", path,
                            check=False)  # fmt: skip
        return found.returncode == 0

    # --- the MLflow UI ------------------------------------------------------------------------

    @initialize()
    def quiet_start(self) -> None:
        self.settle("start")

    @rule(
        technique=st.sampled_from(TECHNIQUES),
        pick=st.integers(0, 5),
        stage=st.sampled_from(["Staging", "Production", "Archived", "None"]),
        archive=st.booleans(),
    )
    def ui_stage(self, technique: str, pick: int, stage: str, archive: bool) -> None:
        body = {"name": technique, "version": self.version(technique, pick), "stage": stage}
        archive = archive and stage in ("Staging", "Production")  # the UI offers the box only for those
        reply = self.ui.post("/model-versions/transition-stage", json={**body, "archive_existing_versions": archive})
        assert reply.status_code == 200, reply.text
        self.settle("UI stage change")

    @rule(technique=st.sampled_from(TECHNIQUES), pick=st.integers(0, 5), alias=st.sampled_from(ALIASES))
    def ui_alias_set(self, technique: str, pick: int, alias: str) -> None:
        body = {"name": technique, "alias": alias, "version": self.version(technique, pick)}
        reply = self.ui.post("/registered-models/alias", json=body)
        assert reply.status_code == 200, reply.text
        self.settle("UI alias set")

    @rule(technique=st.sampled_from(TECHNIQUES), alias=st.sampled_from(ALIASES))
    def ui_alias_delete(self, technique: str, alias: str) -> None:
        reply = self.ui.request("DELETE", "/registered-models/alias", json={"name": technique, "alias": alias})
        assert reply.status_code in (200, 404), reply.text
        self.settle("UI alias delete")

    def live(self, technique: str, environment: str) -> str:
        doc = promotion.current(self.platform.git_remote, "main", technique, environment)
        return str(doc["a"]["version"]) if doc else ""

    @rule(technique=st.sampled_from(TECHNIQUES), environment=st.sampled_from(overlays.ENVIRONMENTS))
    def ui_stage_of_a_version_live_elsewhere(self, technique: str, environment: str) -> None:
        other = "production" if environment == "staging" else "staging"
        version = self.live(technique, other)
        if not version:
            return
        body = {"name": technique, "version": version, "stage": environment.title(), "archive_existing_versions": False}
        reply = self.ui.post("/model-versions/transition-stage", json=body)
        assert reply.status_code == 200, reply.text
        self.settle("UI stage of a version live in the other environment")

    @rule(technique=st.sampled_from(TECHNIQUES))
    def ui_production_rollback(self, technique: str) -> None:
        version = self.live(technique, "production")
        if not version or version == "1":
            return
        body = {"name": technique, "version": str(int(version) - 1), "stage": "Production"}
        reply = self.ui.post("/model-versions/transition-stage", json={**body, "archive_existing_versions": False})
        assert reply.status_code == 200, reply.text
        self.settle("UI production rollback")
        branch = promotion.branch_name("production", technique, str(int(version) - 1))
        if branch in branches(self.platform):  # a rollback merges without --force, and moves all of production
            before = observed.head(self.platform)
            self.cli("merge", branch)
            self.mark(technique, "production", before)
            self.settle("ctcd merge of a UI rollback")
            doc = promotion.current(self.platform.git_remote, "main", technique, "production")
            assert doc is not None and doc["a"]["version"] == str(int(version) - 1) and doc["canary"] is None

    # --- the CLI ------------------------------------------------------------------------------

    @rule(
        technique=st.sampled_from(TECHNIQUES),
        environment=st.sampled_from(overlays.ENVIRONMENTS),
        pick=st.integers(0, 5),
        strategy=st.sampled_from(["full", "canary"]),
    )
    def cli_promote(self, technique: str, environment: str, pick: int, strategy: str) -> None:
        before = observed.head(self.platform)
        version = self.version(technique, pick)
        self.cli("promote", technique, version, "--env", environment, "--strategy", strategy, "--to-main")
        self.mark(technique, environment, before)
        self.settle("ctcd promote")

    @rule(technique=st.sampled_from(TECHNIQUES), environment=st.sampled_from(overlays.ENVIRONMENTS))
    def cli_rollback(self, technique: str, environment: str) -> None:
        before = observed.head(self.platform)
        self.cli("rollback", technique, "--env", environment)
        self.mark(technique, environment, before)
        self.settle("ctcd rollback")

    @rule(technique=st.sampled_from(TECHNIQUES), environment=st.sampled_from(overlays.ENVIRONMENTS))
    def cli_rollout(self, technique: str, environment: str) -> None:
        before = observed.head(self.platform)
        self.cli("rollout", technique, "--env", environment)
        self.mark(technique, environment, before)
        self.settle("ctcd rollout")

    def pending(self, pick: int) -> str:
        """One of the promotion branches on the remote ('' when there is none)."""
        listed = branches(self.platform)
        return listed[pick % len(listed)] if listed else ""

    @rule(pick=st.integers(0, 5))
    def cli_merge(self, pick: int) -> None:
        branch = self.pending(pick)
        if not branch:
            return
        parts = promotion.parse_branch(branch)
        before = observed.head(self.platform)
        self.cli("merge", branch)
        self.mark(parts.technique, parts.environment, before)
        self.settle("ctcd merge")

    # --- a user's git -------------------------------------------------------------------------

    @rule(pick=st.integers(0, 5))
    def git_merge(self, pick: int) -> None:
        branch = self.pending(pick)
        if not branch:
            return
        parts = promotion.parse_branch(branch)
        before = observed.head(self.platform)
        with self.clone() as repo:
            merged = gitrepo.git(repo, "merge", "--quiet", "--no-ff", "--no-edit", f"origin/{branch}", check=False)
            if merged.returncode != 0:
                return  # a conflict: the user would stop here
            gitrepo.git(repo, "push", "--quiet", "origin", "HEAD:main")
        self.mark(parts.technique, parts.environment, before)
        self.settle("git merge + push")

    @rule()
    def git_revert(self) -> None:
        before = observed.head(self.platform)
        with self.clone() as repo:
            changed = gitrepo.git(repo, "show", "--name-only", "--format=", "-m", "--first-parent", "HEAD").stdout
            files = [f for f in changed.split() if f.endswith("/version.yaml")]
            if not files:
                return
            parents = gitrepo.git(repo, "rev-list", "--parents", "-n", "1", "HEAD").stdout.split()
            mainline = ["-m", "1"] if len(parents) > 2 else []
            gitrepo.git(repo, "revert", "--no-edit", *mainline, "HEAD")
            gitrepo.git(repo, "push", "--quiet", "origin", "HEAD:main")
        parts = Path(files[0]).parts  # gitops/models/<technique>/overlays/<env>/version.yaml
        self.mark(parts[2], parts[4], before)
        self.settle("git revert + push")

    def clone(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def user_clone() -> Any:
            with tempfile.TemporaryDirectory() as tmp:
                gitrepo.git(Path(tmp), "clone", "--quiet", self.platform.git_remote, "repo")
                repo = Path(tmp) / "repo"
                gitrepo.git(repo, "config", "user.name", "A User")
                gitrepo.git(repo, "config", "user.email", "user@example.com")
                yield repo

        return user_clone()

    # --- training -----------------------------------------------------------------------------

    @precondition(lambda self: self.trained < TRAININGS)
    @rule(technique=st.sampled_from(TECHNIQUES))
    def train(self, technique: str) -> None:
        self.trained += 1
        before = observed.head(self.platform)
        args = ("submit", "--from", "workflowtemplate/train", "-p", f"technique={technique}", "--wait", "-o", "name")
        result = ctcd(self.platform, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        self.mark(technique, "staging", before)
        self.settle("training run")


@pytest.mark.fuzz
@pytest.mark.timeout(max(300, SEQUENCES * MOVES * 40))
def test_registry_git_and_serving_agree_after_any_sequence_of_moves(runs: dict[str, Any], platform: Settings) -> None:
    PLATFORM[:] = [platform]
    run_state_machine_as_test(
        DeliveryLoop,
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=MOVES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.generate],  # the platform is live state: a failing sequence is reported, not shrunk
            derandomize="CTCD_LOOP_SEQUENCES" not in os.environ,  # make test: the same short sequences every run
        ),
    )
    lines = [
        f"{kind}: median {statistics.median(seconds):.1f}s, worst {max(seconds):.1f}s ({len(seconds)} moves)"
        for kind, seconds in sorted(CONVERGENCE.items())
    ]
    print("convergence per kind of move:\n  " + "\n  ".join(lines))
