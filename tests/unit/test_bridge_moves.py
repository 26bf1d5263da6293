"""The bridge's decisions against an in-memory registry and git: a registry move asks for a promotion, the registry
shows only what git serves (never a marker ahead of it), emptied markers are set back, and a pass after
convergence changes nothing (no ping-pong)."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from workflows.delivery import bridge, promotion
from workflows.platform import registry
from workflows.settings import Settings

CLOCK = itertools.count(1_000_000)


@dataclass
class Version:
    version: str
    current_stage: str = "None"
    last_updated_timestamp: int = field(default_factory=lambda: next(CLOCK))
    tags: dict[str, str] = field(default_factory=dict)


class FakeRegistry:
    """The few MLflow client calls the bridge makes, on one registered model."""

    def __init__(self, count: int) -> None:
        self.versions = {str(n): Version(str(n)) for n in range(1, count + 1)}
        self.aliases: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.writes = 0

    def get_registered_model(self, name: str) -> Any:
        return SimpleNamespace(aliases=dict(self.aliases), tags=dict(self.tags))

    def search_model_versions(self, query: str) -> list[Version]:
        return [
            Version(v.version, v.current_stage, v.last_updated_timestamp, dict(v.tags)) for v in self.versions.values()
        ]

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version
        self.writes += 1

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.aliases.pop(alias, None)
        self.writes += 1

    def get_model_version(self, name: str, version: str) -> Any:
        return SimpleNamespace(tags={"ctcd.gate.challenger": f"0.9{version}", "ctcd.gate.champion": ""})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.tags.pop(key, None)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.versions[version].tags[key] = value

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self.versions[version].tags.pop(key, None)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool = False
    ) -> None:
        for other in self.versions.values():
            if archive_existing_versions and other.current_stage == stage and other.version != version:
                other.current_stage, other.last_updated_timestamp = "Archived", next(CLOCK)
        target = self.versions[version]
        target.current_stage, target.last_updated_timestamp = stage, next(CLOCK)
        self.writes += 1


class FakeGit:
    """Version files on main (with KServe's canary semantics) and promotion branches."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.branches: dict[str, Any] = {}
        self.commits = 0

    def pin(self, env: str, version: str, canary: int | None = None) -> None:
        now = self.docs.get(("m", env))
        previous = ""
        if canary is not None and now is not None:
            previous = str(now["a"]["version"]) if now["canary"] is None else now["previous"]
        self.docs[("m", env)] = {
            "a": {"version": version, "name": "m"},
            "b": None,
            "canary": canary,
            "weights": None,
            "previous": previous,
            "committed_ms": next(CLOCK),
        }

    def version(self, env: str) -> str:
        doc = self.docs.get(("m", env))
        return str(doc["a"]["version"]) if doc else ""

    def promote(self, remote: str, main: str, desired: Any, evidence: dict[str, str], to_main: bool) -> Any:
        self.commits += 1
        if to_main:
            self.pin(desired.environment, desired.pin.version, desired.canary_percent)
            return promotion.Result("main", f"{self.commits:040x}", True, True)
        branch = promotion.branch_name(desired.environment, desired.technique, desired.pin.version)
        self.branches[branch] = (desired, evidence)
        return promotion.Result(branch, f"{self.commits:040x}", True, False)

    def merge(self, branch: str) -> None:
        desired, _ = self.branches.pop(branch)
        self.pin(desired.environment, desired.pin.version, desired.canary_percent)

    def pinned(self, remote: str, main: str) -> dict[tuple[str, str], Any]:
        return {key: dict(doc) for key, doc in self.docs.items()}

    def current(self, remote: str, main: str, technique: str, env: str) -> Any:
        return self.docs.get((technique, env))

    def pending(self, remote: str) -> dict[str, dict[str, str]]:
        found: dict[str, str] = {}
        for branch, (desired, _) in self.branches.items():
            found[desired.pin.version] = f"{desired.environment}: waits for `ctcd merge {branch}`"
        return {"m": found}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    reg, git = FakeRegistry(4), FakeGit()
    monkeypatch.setattr(registry, "client", lambda uri: reg)
    monkeypatch.setattr(
        registry,
        "pin_fields",
        lambda c, n, v, b: {
            "version": v,
            "storage_uri": f"s3://bucket/models/m/{v}",
            "sha256": "0" * 64,
            "run_id": "r",
            "dataset_version": "d",
        },
    )
    monkeypatch.setattr(promotion, "promote", git.promote)
    monkeypatch.setattr(promotion, "pinned", git.pinned)
    monkeypatch.setattr(promotion, "current", git.current)
    monkeypatch.setattr(bridge, "pending_branches", git.pending)
    settings = Settings(state_dir=tmp_path)
    return SimpleNamespace(reg=reg, git=git, settings=settings)


def settle(world: Any, passes: int = 4) -> list[list[bridge.Action]]:
    """Run passes until one changes nothing; fail if it takes more than ``passes``."""
    history = []
    for _ in range(passes):
        actions = bridge.reconcile(world.settings, ["m"])
        history.append(actions)
        if all(a.kind in ("in-sync", "waiting") for a in actions):
            return history
    raise AssertionError(f"no quiescence after {passes} passes: {history}")


def truthful(world: Any) -> bool:
    docs = {env: world.git.docs.get(("m", env)) for env in ("staging", "production")}
    return bridge.disagreeing(world.reg, "m", docs) == []


def stages(world: Any) -> dict[str, str]:
    return {v: item.current_stage for v, item in world.reg.versions.items() if item.current_stage != "None"}


def start(world: Any) -> None:
    """Staging and production both on v2, the registry showing it."""
    world.git.pin("staging", "2")
    world.git.pin("production", "2")
    settle(world)
    assert truthful(world)
    assert world.reg.aliases == {"champion": "2", "staging": "2", "production": "2"}
    assert stages(world) == {"2": "Production"}
    assert world.reg.versions["2"].tags["ctcd.serving"] == "staging 100%, production 100%"


def test_git_wins_when_the_bridge_has_no_memory(world: Any) -> None:
    start(world)
    assert world.git.commits == 0


def test_a_ui_rollback_in_production_waits_as_pending_then_moves_everything(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "1", "Production")  # the UI, archive box unticked
    settle(world)
    desired, evidence = world.git.branches["promote/production/m/v1"]
    assert desired.strategy == "full" and evidence["Intent"] == "rollback"  # a full move back, not a 20% canary
    assert evidence["Metric"] == "0.91"  # the gate's figure goes with every promotion
    assert world.reg.aliases["production"] == "2" and stages(world) == {"2": "Production"}  # nothing ran ahead
    assert world.reg.versions["1"].tags["ctcd.pending"] == "production: waits for `ctcd merge promote/production/m/v1`"
    world.git.merge("promote/production/m/v1")
    settle(world)
    assert truthful(world) and world.reg.aliases["production"] == "1"
    assert stages(world) == {"1": "Production", "2": "Staging"} and "ctcd.pending" not in world.reg.versions["1"].tags


def test_the_production_alias_set_in_the_ui_acts(world: Any) -> None:
    start(world)
    world.reg.set_registered_model_alias("m", "production", "4")
    settle(world)
    assert set(world.git.branches) == {"promote/production/m/v4"}
    assert world.reg.aliases["production"] == "2"  # set back: v4 does not serve production yet


def test_a_production_rollback_in_git_is_written_back_without_ping_pong(world: Any) -> None:
    start(world)
    world.git.pin("production", "1")
    settle(world)
    assert world.reg.aliases["production"] == "1" and world.reg.versions["1"].current_stage == "Production"
    assert truthful(world)
    commits, writes = world.git.commits, world.reg.writes
    settle(world)
    assert world.git.commits == commits and not world.git.branches and world.reg.writes == writes


def test_a_deleted_alias_is_set_back_and_promotes_nothing(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    start(world)
    world.reg.delete_registered_model_alias("m", "champion")
    world.reg.transition_model_version_stage("m", "2", "Archived")
    with caplog.at_level(logging.INFO, logger="workflows.delivery.bridge"):
        settle(world)
    assert world.reg.aliases["champion"] == "2" and world.git.commits == 0 and truthful(world)
    assert any("the registry shows what serves: @champion=v2" in r.message for r in caplog.records)


def test_a_staging_move_commits_a_canary_to_main_and_both_versions_show_as_serving(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "3", "Staging")
    settle(world)
    assert world.git.version("staging") == "3" and world.git.version("production") == "2"
    assert world.reg.aliases == {"champion": "3", "staging": "3", "staging-prev": "2", "production": "2"}
    assert world.reg.versions["3"].tags["ctcd.serving"] == "staging 20% (canary)"
    assert world.reg.versions["2"].tags["ctcd.serving"] == "staging 80% (previous), production 100%"
    assert stages(world) == {"2": "Production", "3": "Staging"} and truthful(world)


def test_staging_can_be_set_on_a_version_that_serves_production(world: Any) -> None:
    world.git.pin("staging", "1")
    world.git.pin("production", "2")
    settle(world)
    world.reg.transition_model_version_stage("m", "2", "Staging")  # v2 leaves Production in MLflow's UI
    settle(world)
    assert world.git.version("staging") == "2" and world.git.version("production") == "2"
    assert stages(world) == {"1": "Staging", "2": "Production"}  # v1 still takes 80% of staging: not Archived
    assert world.reg.aliases["staging-prev"] == "1" and world.reg.aliases["staging"] == "2" and truthful(world)


def test_a_stage_move_then_a_later_git_change_the_later_one_wins(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "4", "Staging")
    world.git.pin("staging", "1")  # someone rolls staging back in git after the click, before the bridge's pass
    settle(world)
    assert world.git.commits == 0 and world.git.version("staging") == "1" and world.reg.aliases["staging"] == "1"


def test_state_lives_in_the_state_folder_and_old_tags_are_removed(world: Any) -> None:
    world.reg.tags["ctcd.bridge.production"] = '{"registry": "2", "git": "2"}'
    start(world)
    assert world.reg.tags == {}
    assert (world.settings.state_dir / "bridge-state.json").stat().st_mode & 0o777 == 0o600


def test_a_pin_removed_in_git_clears_the_registry_instead_of_promoting_again(world: Any) -> None:
    world.git.pin("staging", "3")
    world.git.pin("production", "2")
    settle(world)
    del world.git.docs[("m", "staging")]  # a user reverted staging's first promotion
    settle(world)
    assert world.git.commits == 0 and world.git.version("staging") == ""
    assert world.reg.versions["3"].current_stage == "Archived" and "staging" not in world.reg.aliases
    assert truthful(world)
