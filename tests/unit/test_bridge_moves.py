"""The bridge's decisions against an in-memory registry and git: the latest move wins, the other side follows,
emptied markers are set back, and a pass after convergence changes nothing (no ping-pong)."""

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


class FakeRegistry:
    """The few MLflow client calls the bridge makes, on one registered model."""

    def __init__(self, count: int) -> None:
        self.versions = {str(n): Version(str(n)) for n in range(1, count + 1)}
        self.aliases: dict[str, str] = {}
        self.tags: dict[str, str] = {}

    def get_registered_model(self, name: str) -> Any:
        return SimpleNamespace(aliases=dict(self.aliases), tags=dict(self.tags))

    def search_model_versions(self, query: str) -> list[Version]:
        return [Version(v.version, v.current_stage, v.last_updated_timestamp) for v in self.versions.values()]

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.aliases.pop(alias, None)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.tags.pop(key, None)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool = False
    ) -> None:
        for other in self.versions.values():
            if archive_existing_versions and other.current_stage == stage and other.version != version:
                other.current_stage, other.last_updated_timestamp = "Archived", next(CLOCK)
        target = self.versions[version]
        target.current_stage, target.last_updated_timestamp = stage, next(CLOCK)


class FakeGit:
    """Version pins on main and promotion branches."""

    def __init__(self) -> None:
        self.pins: dict[tuple[str, str], str] = {}
        self.branches: set[str] = set()
        self.commits = 0

    def promote(self, remote: str, main: str, desired: Any, evidence: dict[str, str], to_main: bool) -> Any:
        self.commits += 1
        if to_main:
            self.pins[(desired.technique, desired.environment)] = desired.pin.version
            return promotion.Result("main", f"{self.commits:040x}", True, True)
        branch = promotion.branch_name(desired.environment, desired.technique, desired.pin.version)
        self.branches.add(branch)
        return promotion.Result(branch, f"{self.commits:040x}", True, False)

    def pinned(self, remote: str, main: str) -> dict[tuple[str, str], Any]:
        return {key: {"a": {"version": version}} for key, version in self.pins.items()}


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


def agree(world: Any, environment: str) -> bool:
    pinned = world.git.pins.get(("m", environment), "")
    return bridge.disagreeing(world.reg, "m", environment, pinned) == []


def start(world: Any) -> None:
    """Staging and production both on v2, every marker agreeing."""
    world.git.pins = {("m", "staging"): "2", ("m", "production"): "2"}
    settle(world)
    assert agree(world, "staging") and agree(world, "production")
    assert world.reg.aliases == {"champion": "2"} and world.reg.versions["2"].current_stage == "Production"


def test_git_wins_when_the_bridge_has_no_memory(world: Any) -> None:
    start(world)
    assert world.git.commits == 0


def test_a_stage_change_to_an_older_version_wins_over_the_alias(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "1", "Production")  # the UI, archive box unticked
    settle(world)
    assert world.git.branches == {"promote/production/m/v1"}  # production merges by hand
    assert world.reg.aliases["champion"] == "1"  # the alias followed the stage
    world.git.pins[("m", "production")] = "1"  # the human merge
    settle(world)
    assert agree(world, "production")


def test_a_production_rollback_in_git_is_written_back_without_ping_pong(world: Any) -> None:
    start(world)
    world.git.pins[("m", "production")] = "1"
    settle(world)
    assert world.reg.aliases["champion"] == "1" and world.reg.versions["1"].current_stage == "Production"
    assert agree(world, "production") and agree(world, "staging")
    commits = world.git.commits
    settle(world)
    assert world.git.commits == commits and not world.git.branches  # nothing proposed back


def test_a_deleted_alias_is_set_back_and_promotes_nothing(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    start(world)
    world.reg.delete_registered_model_alias("m", "champion")
    with caplog.at_level(logging.INFO, logger="workflows.delivery.bridge"):
        settle(world)
    assert world.reg.aliases["champion"] == "2" and world.git.commits == 0
    assert any(
        "registry follows git v2" in r.message and "alias champion set to v2" in r.message for r in caplog.records
    )


def test_a_staging_move_commits_to_main_and_leaves_production_alone(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "3", "Staging", archive_existing_versions=True)
    settle(world)
    assert world.git.pins == {("m", "staging"): "3", ("m", "production"): "2"}
    assert agree(world, "staging") and agree(world, "production")


def test_moving_the_staged_version_on_to_production_keeps_staging_satisfied(world: Any) -> None:
    start(world)
    world.reg.transition_model_version_stage("m", "3", "Staging", archive_existing_versions=True)
    settle(world)
    world.reg.transition_model_version_stage("m", "3", "Production", archive_existing_versions=True)
    settle(world)
    assert world.git.branches == {"promote/production/m/v3"}
    world.git.pins[("m", "production")] = "3"
    settle(world)
    assert world.reg.versions["3"].current_stage == "Production"
    assert agree(world, "staging") and agree(world, "production")


def test_an_alias_move_then_a_git_rollback_the_later_one_wins(world: Any) -> None:
    start(world)
    world.reg.set_registered_model_alias("m", "champion", "4")
    settle(world)
    assert "promote/production/m/v4" in world.git.branches
    world.git.pins[("m", "production")] = "1"  # someone rolls production back before the merge
    settle(world)
    assert world.reg.aliases["champion"] == "1" and agree(world, "production")


def test_state_lives_in_the_state_folder_and_old_tags_are_removed(world: Any) -> None:
    world.reg.tags["ctcd.bridge.production"] = '{"registry": "2", "git": "2"}'
    start(world)
    assert world.reg.tags == {}
    assert (world.settings.state_dir / "bridge-state.json").stat().st_mode & 0o777 == 0o600


def test_a_pin_removed_in_git_clears_the_registry_instead_of_promoting_again(world: Any) -> None:
    start(world)
    del world.git.pins[("m", "staging")]  # a user reverted staging's first promotion
    settle(world)
    assert world.git.commits == 0 and ("m", "staging") not in world.git.pins
    assert all(v.current_stage != "Staging" for v in world.reg.versions.values())
    assert agree(world, "production")
