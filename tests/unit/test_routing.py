"""Routing between a task's techniques: the InferenceGraph files, their commits on a real git remote, refusals."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from serving.local import graph
from workflows.delivery import overlays, promotion, routing
from workflows.delivery.manifests import ManifestError, kustomize, validate
from workflows.platform import gitrepo
from workflows.settings import REPO_ROOT

TECHNIQUES = ["intent-classifier", "intent-spacy"]
SHA = "c" * 64


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def rendered(tmp_path: Path, plan: routing.Routing) -> dict[str, object]:
    folder = tmp_path / "gitops" / "tasks" / plan.task
    write(folder, {**routing.base_files(plan.task, TECHNIQUES), **routing.overlay_files(plan)})
    docs = kustomize(folder / "overlays" / plan.environment)
    validate(docs, plan.task)
    assert len(docs) == 1
    return docs[0]


def test_the_compiled_base_splits_equally_between_the_tasks_techniques() -> None:
    docs = kustomize(REPO_ROOT / "gitops" / "tasks" / "intents" / "base")
    validate(docs, "intents base")
    steps = docs[0]["spec"]["nodes"]["root"]["steps"]
    assert docs[0]["kind"] == "InferenceGraph" and docs[0]["metadata"]["name"] == "intents"
    assert {s["serviceName"]: s["weight"] for s in steps} == {"intent-classifier": 50, "intent-spacy": 50}
    assert routing.graph("t", None, ["a", "b", "c"])["spec"]["nodes"]["root"]["steps"][0]["weight"] == 34


def test_an_overlay_without_channels_is_a_splitter_in_the_environments_namespace(tmp_path: Path) -> None:
    plan = routing.Routing("intents", "production", {"intent-classifier": 80, "intent-spacy": 20})
    doc = rendered(tmp_path, plan)
    assert doc["metadata"]["namespace"] == "ctcd-production"  # type: ignore[index]
    nodes = doc["spec"]["nodes"]  # type: ignore[index]
    assert list(nodes) == ["root"] and nodes["root"]["routerType"] == "Splitter"
    assert [(s["serviceName"], s["weight"]) for s in nodes["root"]["steps"]] == [
        ("intent-classifier", 80),
        ("intent-spacy", 20),
    ]


def test_channels_make_a_switch_whose_default_goes_on_to_the_split(tmp_path: Path) -> None:
    plan = routing.Routing(
        "intents", "staging", {"intent-classifier": 70, "intent-spacy": 30}, {"chat": "intent-spacy"}
    )
    nodes = rendered(tmp_path, plan)["spec"]["nodes"]  # type: ignore[index]
    root, split = nodes["root"], nodes[routing.SPLIT_NODE]
    assert root["routerType"] == "Switch" and split["routerType"] == "Splitter"
    assert root["steps"][0] == {
        "name": "chat",
        "condition": '[@this].#(parameters.channel=="chat")',
        "serviceName": "intent-spacy",
    }
    assert root["steps"][-1] == {"name": "default", "condition": "@this", "nodeName": "split"}
    text = routing.overlay_files(plan)["overlays/staging/routing.yaml"]
    assert routing.read_routing("intents", "staging", text) == plan


@pytest.mark.parametrize(
    ("weights", "channels", "message"),
    [
        ({"intent-classifier": 70, "intent-spacy": 20}, {}, "must be 0..100 each and sum to 100"),
        ({"intent-classifier": 110, "intent-spacy": -10}, {}, "must be 0..100 each"),
        ({"Intent_Classifier": 100}, {}, "technique 'Intent_Classifier'"),
        ({"intent-classifier": 100}, {"default": "intent-spacy"}, "reserved"),
        ({"intent-classifier": 100}, {'chat")': "intent-spacy"}, "channel"),
    ],
)
def test_bad_routing_is_refused_by_name(weights: dict[str, int], channels: dict[str, str], message: str) -> None:
    with pytest.raises(overlays.GitopsError, match=message):
        routing.Routing("intents", "staging", weights, channels)


@pytest.mark.parametrize(
    ("text", "message"),
    [("intent-classifier:70", "TECHNIQUE=PERCENT"), ("intent-classifier=seventy", "TECHNIQUE=PERCENT")],
)
def test_bad_weight_text_is_refused_with_the_form_to_use(text: str, message: str) -> None:
    with pytest.raises(overlays.GitopsError, match=message):
        routing.parse_weights(text)


def test_channel_text_parses_and_a_bad_one_says_the_form() -> None:
    assert routing.parse_channels(["chat=intent-spacy", " web = intent-classifier"]) == {
        "chat": "intent-spacy",
        "web": "intent-classifier",
    }
    with pytest.raises(overlays.GitopsError, match="CHANNEL=TECHNIQUE"):
        routing.parse_channels(["chat"])


def test_the_schema_check_refuses_a_broken_graph() -> None:
    plan = routing.Routing("intents", "staging", {"intent-classifier": 100}, {"chat": "intent-spacy"})
    doc = routing.graph("intents", plan, TECHNIQUES)
    doc["spec"]["nodes"]["root"]["steps"][0].pop("condition")
    doc["spec"]["nodes"]["root"]["steps"][1]["nodeName"] = "nowhere"
    doc["spec"]["nodes"]["split"]["steps"][0]["weight"] = 60
    with pytest.raises(ManifestError) as caught:
        validate([doc], "broken")
    assert "needs a condition" in str(caught.value)
    assert "no node 'nowhere'" in str(caught.value)
    assert "Splitter weights must sum to 100" in str(caught.value)


# --- commits on a real git remote --------------------------------------------------------------------------------


def make_remote(tmp_path: Path) -> str:
    """A bare GitOps remote holding this project's generated bases and no overlay yet."""
    source = tmp_path / "source"
    for folder in ("models", "tasks"):
        shutil.copytree(
            REPO_ROOT / "gitops" / folder, source / "gitops" / folder, ignore=shutil.ignore_patterns("overlays")
        )
    gitrepo.git(tmp_path, "init", "--quiet", "--initial-branch", "main", str(source))
    gitrepo.git(source, "add", ".")
    gitrepo.git(source, "commit", "--quiet", "-m", "initial")
    bare = tmp_path / "gitops.git"
    gitrepo.ensure_remote(bare, source, "main")
    return str(bare)


@pytest.fixture()
def remote(tmp_path: Path) -> str:
    return make_remote(tmp_path)


def serve(remote: str, technique: str, env: str = "staging") -> None:
    pin = overlays.Pin("1", f"s3://ctcd-artifacts/mlflow/1/models/{technique}/artifacts", SHA, "run-1", "ds1")
    promotion.promote(remote, "main", overlays.Desired(technique, env, "full", pin), {}, to_main=True)


def subjects(remote: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", remote, "log", "--format=%s", "main"], capture_output=True, text=True)
    return out.stdout.splitlines()


def test_a_route_is_one_commit_of_the_routing_file_and_a_rerun_commits_nothing(remote: str) -> None:
    serve(remote, "intent-classifier")
    serve(remote, "intent-spacy")
    plan = routing.Routing(
        "intents", "staging", {"intent-classifier": 70, "intent-spacy": 30}, {"chat": "intent-spacy"}
    )
    branch, commit, changed = routing.route(remote, "main", plan, TECHNIQUES, to_main=True)
    assert branch == "main" and changed
    assert subjects(remote)[0] == "Route intents in staging: intent-classifier=70,intent-spacy=30, chat→intent-spacy"
    with gitrepo.scratch_clone(remote, "main") as repo:
        changed_files = gitrepo.git(repo, "show", "--format=", "--name-only", "HEAD").stdout.split()
        assert gitrepo.trailers(repo, "HEAD")["Weights"] == "intent-classifier=70,intent-spacy=30"
    assert changed_files == [
        "gitops/tasks/intents/overlays/staging/kustomization.yaml",
        "gitops/tasks/intents/overlays/staging/routing.yaml",
    ]
    assert routing.current(remote, "main", "intents", "staging") == plan
    again = routing.route(remote, "main", plan, TECHNIQUES, to_main=True)
    assert again == ("main", commit, False)


def test_a_technique_not_served_or_outside_the_task_is_refused_before_any_commit(remote: str) -> None:
    serve(remote, "intent-classifier")
    before = subjects(remote)
    plan = routing.Routing("intents", "staging", {"intent-classifier": 50, "intent-spacy": 50})
    with pytest.raises(overlays.GitopsError, match=r"intent-spacy is not served in staging: promote a version"):
        routing.route(remote, "main", plan, TECHNIQUES, to_main=True)
    outsider = routing.Routing("intents", "staging", {"intent-classifier": 50, "invoice-matcher": 50})
    with pytest.raises(overlays.GitopsError, match="invoice-matcher does not solve task intents"):
        routing.route(remote, "main", outsider, TECHNIQUES, to_main=True)
    assert subjects(remote) == before


def test_production_routing_waits_on_a_branch_that_merge_lands(remote: str) -> None:
    for technique in TECHNIQUES:
        serve(remote, technique, "production")
    plan = routing.Routing("intents", "production", {"intent-classifier": 90, "intent-spacy": 10})
    branch, _, changed = routing.route(remote, "main", plan, TECHNIQUES, to_main=False)
    assert branch == "route/production/intents" and changed and routing.is_branch(branch)
    assert routing.current(remote, "main", "intents", "production") is None
    promotion.merge(remote, "main", branch)
    assert routing.current(remote, "main", "intents", "production") == plan
    assert subjects(remote)[0] == f"Merge {branch}"


def test_concurrent_routing_and_promotion_both_land_and_the_last_route_wins(remote: str) -> None:
    serve(remote, "intent-classifier")
    serve(remote, "intent-spacy")
    plans = [routing.Routing("intents", "staging", {"intent-classifier": w, "intent-spacy": 100 - w}) for w in (10, 90)]
    pin = overlays.Pin("2", "s3://ctcd-artifacts/mlflow/1/models/v2/artifacts", SHA, "run-2", "ds1")
    moves = [lambda p=p: routing.route(remote, "main", p, TECHNIQUES, to_main=True) for p in plans]
    moves.append(
        lambda: promotion.promote(
            remote, "main", overlays.Desired("intent-classifier", "staging", "full", pin), {}, to_main=True
        )
    )
    with ThreadPoolExecutor(len(moves)) as pool:
        done = [pool.submit(move) for move in moves]
    assert not [f.exception() for f in done if f.exception()]
    routes = [s for s in subjects(remote) if s.startswith("Route intents")]
    assert len(routes) == 2  # neither routing change was lost
    assert promotion.current(remote, "main", "intent-classifier", "staging")["a"]["version"] == "2"  # type: ignore[index]
    final = routing.current(remote, "main", "intents", "staging")
    latest = plans[0] if routes[0].endswith("intent-classifier=10,intent-spacy=90") else plans[1]
    assert final == latest  # main says what the last landed commit said
    with gitrepo.scratch_clone(remote, "main") as repo:
        validate(kustomize(repo / "gitops" / "tasks" / "intents" / "overlays" / "staging"), "after the race")


# --- sequences of routing moves (hypothesis) ---------------------------------------------------------------------

WEIGHTS = st.integers(0, 100).map(lambda w: {"intent-classifier": w, "intent-spacy": 100 - w})
CHANNELS = st.dictionaries(st.sampled_from(["app", "web", "chat"]), st.sampled_from(TECHNIQUES), max_size=2)


class RoutingMoves(RuleBasedStateMachine):
    """Promote, route, merge a production route: main always says the last landed routing, and it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ctcd-routing-"))
        self.remote = make_remote(self.folder)
        self.served: dict[str, set[str]] = {env: set() for env in overlays.ENVIRONMENTS}
        self.routed: dict[str, routing.Routing | None] = dict.fromkeys(overlays.ENVIRONMENTS)
        self.pending: routing.Routing | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize(technique=st.sampled_from(TECHNIQUES))
    def training_promoted(self, technique: str) -> None:
        """Training has promoted one technique, or both, to staging (as every training run does)."""
        for each in {technique, "intent-classifier"}:
            self.promote(each, "staging")

    @rule(technique=st.sampled_from(TECHNIQUES), env=st.sampled_from(overlays.ENVIRONMENTS))
    def promote(self, technique: str, env: str) -> None:
        serve(self.remote, technique, env)
        self.served[env].add(technique)

    @rule(env=st.sampled_from(overlays.ENVIRONMENTS), weights=WEIGHTS, channels=CHANNELS)
    def route(self, env: str, weights: dict[str, int], channels: dict[str, str]) -> None:
        plan = routing.Routing("intents", env, weights, channels)
        before = subjects(self.remote)
        if not plan.techniques() <= self.served[env]:
            with pytest.raises(overlays.GitopsError, match="is not served in"):
                routing.route(self.remote, "main", plan, TECHNIQUES, to_main=env == "staging")
            assert subjects(self.remote) == before  # nothing half-written
            return
        routing.route(self.remote, "main", plan, TECHNIQUES, to_main=env == "staging")
        if env == "staging":
            self.routed[env] = plan
        else:
            self.pending = plan

    @precondition(lambda self: self.pending is not None)
    @rule()
    def merge_production(self) -> None:
        promotion.merge(self.remote, "main", routing.branch_name("production", "intents"))
        self.routed["production"], self.pending = self.pending, None

    @invariant()
    def main_says_the_last_landed_routing_and_it_renders(self) -> None:
        for env, plan in self.routed.items():
            assert routing.current(self.remote, "main", "intents", env) == plan
        with gitrepo.scratch_clone(self.remote, "main") as repo:
            for overlay in sorted((repo / "gitops" / "tasks" / "intents" / "overlays").glob("*")):
                docs = kustomize(overlay)
                validate(docs, overlay.name)
                graph.check(docs[0])  # local serving can route it
                assert graph.services(docs[0]) <= self.served[overlay.name]


def test_any_sequence_of_routing_moves_keeps_main_truthful() -> None:
    run_state_machine_as_test(
        RoutingMoves,
        settings=settings(max_examples=8, stateful_step_count=8, deadline=None, derandomize=True, database=None),
    )
