"""Promotions against real git repositories: commits with trailers, merges, reverts, races and crashes."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.gitops_remote import bare_remote
from workflows.delivery import ledger, overlays, promotion, rollback
from workflows.platform import gitrepo

SHA = "b" * 64


def pin(version: str) -> overlays.Pin:
    return overlays.Pin(
        version, f"s3://ctcd-artifacts/mlflow/1/models/m-{version}/artifacts", SHA, f"run-{version}", "ds1"
    )


def desired(version: str, env: str = "staging", technique: str = "intent-classifier", **kw: object) -> overlays.Desired:
    return overlays.Desired(technique, env, kw.pop("strategy", "full"), pin(version), **kw)  # type: ignore[arg-type]


@pytest.fixture()
def remote(tmp_path: Path) -> str:
    bare = bare_remote(tmp_path)
    assert gitrepo.ensure_remote(bare, tmp_path / "source", "main") is False  # idempotent
    return str(bare)


def log(remote: str, *args: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", remote, "log", "--format=%s", *args], capture_output=True, text=True)
    return out.stdout.splitlines()


def show(remote: str, rev: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", remote, "show", f"{rev}:{path}"], capture_output=True, text=True).stdout


VERSION_FILE = "gitops/models/intent-classifier/overlays/staging/version.yaml"


def test_promote_to_main_commits_one_file_change_with_trailers(remote: str) -> None:
    result = promotion.promote(
        remote,
        "main",
        desired("3", strategy="canary", canary_percent=20),
        {"Metric": "accuracy=0.97", "Champion-Metric": "accuracy=0.95"},
        to_main=True,
    )
    assert result.changed and result.merged and result.branch == "main"
    assert log(remote, "-1") == ["Promote intent-classifier v3 to staging (canary 20%)"]
    with gitrepo.scratch_clone(remote, "main") as repo:
        trailers = gitrepo.trailers(repo, "HEAD")
    assert trailers["MLflow-Version"] == "3" and trailers["MLflow-Run-Id"] == "run-3"
    assert trailers["Dataset-Version"] == "ds1" and trailers["Metric"] == "accuracy=0.97"
    assert trailers["Champion-Metric"] == "accuracy=0.95"
    parsed = overlays.read_version(show(remote, "main", VERSION_FILE))
    assert parsed["a"]["version"] == "3" and parsed["canary"] == 20


def test_rerun_converges_without_a_duplicate_commit(remote: str) -> None:
    first = promotion.promote(remote, "main", desired("3"), {}, to_main=True)
    again = promotion.promote(remote, "main", desired("3"), {}, to_main=True)
    assert first.changed and not again.changed and again.commit == first.commit
    assert len(log(remote, "--", VERSION_FILE)) == 1


def test_merging_the_branch_is_the_promotion(remote: str) -> None:
    result = promotion.promote(remote, "main", desired("4", env="production"), {}, to_main=False)
    assert result.branch == "promote/production/intent-classifier/v4" and not result.merged
    assert show(remote, "main", "gitops/models/intent-classifier/overlays/production/version.yaml") == ""
    again = promotion.promote(remote, "main", desired("4", env="production"), {}, to_main=False)
    assert not again.changed and again.commit == result.commit  # no duplicate on the branch either
    promotion.merge(remote, "main", result.branch)
    assert log(remote, "-1") == ["Merge promote/production/intent-classifier/v4"]
    assert (
        overlays.read_version(show(remote, "main", "gitops/models/intent-classifier/overlays/production/version.yaml"))[
            "a"
        ]["version"]
        == "4"
    )
    with pytest.raises(promotion.AlreadyMerged, match=r"v4 is already merged into main \(commit [0-9a-f]{12}\)"):
        promotion.merge(remote, "main", result.branch)  # the branch was deleted after merging: say so, not "missing"
    with pytest.raises(gitrepo.GitError, match="does not exist on the remote"):
        promotion.merge(remote, "main", "promote/production/intent-classifier/v44")


def _served(remote: str, env: str = "staging") -> tuple[str, int | None]:
    now = promotion.current(remote, "main", "intent-classifier", env)
    assert now is not None
    return now["a"]["version"], now["canary"]


def test_rollback_walks_the_ledger_back_and_never_reverts(remote: str) -> None:
    promotion.promote(remote, "main", desired("1"), {"Source": "cli"}, to_main=True)  # r1: v1 100%
    promotion.promote(remote, "main", desired("2"), {"Source": "cli"}, to_main=True)  # r2: v2 100%
    promotion.promote(remote, "main", desired("3", strategy="canary", canary_percent=20), {}, to_main=True)  # r3
    promotion.rollout(remote, "main", "intent-classifier", "staging")  # r4: v3 100%
    assert _served(remote) == ("3", None)
    rollback.rollback(remote, "main", "intent-classifier", "staging")  # r5: back to r2, v2 100%
    assert _served(remote) == ("2", None)
    rollback.rollback(remote, "main", "intent-classifier", "staging")  # r6: walks on to r1, v1 100%
    assert _served(remote) == ("1", None)
    with pytest.raises(rollback.RollbackError, match="nothing earlier to roll back to"):
        rollback.rollback(remote, "main", "intent-classifier", "staging")
    assert not any(subject.startswith("Revert") for subject in log(remote))
    with gitrepo.scratch_clone(remote, "main") as repo:
        trailers = gitrepo.trailers(repo, "HEAD")
        undone = gitrepo.git(repo, "rev-parse", "HEAD~1").stdout.strip()
    assert trailers["Rollback-To-Revision"] == "1" and trailers["Rollback-Of"] == undone
    assert trailers["Source"] == "rollback" and trailers["MLflow-Version"] == "1"
    entries = ledger.history(remote, "main", "intent-classifier", "staging")
    assert [(e.revision, e.version, e.source) for e in entries] == [
        (1, "1", "cli"),
        (2, "2", "cli"),
        (3, "3", "cli"),
        (4, "3", "rollout"),
        (5, "2", "rollback"),
        (6, "1", "rollback"),
    ]
    assert entries[2].traffic == "canary v3 20%" and entries[5].rollback_to == 1


def test_rollback_to_a_revision_restores_its_pins_and_refuses_an_orphaned_canary(remote: str) -> None:
    promotion.promote(remote, "main", desired("1"), {}, to_main=True)  # r1
    promotion.promote(remote, "main", desired("2", strategy="canary", canary_percent=30), {}, to_main=True)  # r2
    promotion.promote(remote, "main", desired("4"), {}, to_main=True)  # r3: v4 100%, v1 no longer rolled out
    with pytest.raises(rollback.RollbackError, match="revision 2 was a canary .* over a model that no longer serves"):
        rollback.rollback(remote, "main", "intent-classifier", "staging", to_revision=2)
    rollback.rollback(remote, "main", "intent-classifier", "staging", to_revision=1)  # r4: v1 100%
    rollback.rollback(remote, "main", "intent-classifier", "staging", to_revision=2)  # over v1 again: restorable
    assert _served(remote) == ("2", 30)
    with pytest.raises(rollback.RollbackError, match="revision 9 is not in the ledger"):
        rollback.rollback(remote, "main", "intent-classifier", "staging", to_revision=9)
    with pytest.raises(rollback.RollbackError, match="never been promoted"):
        rollback.rollback(remote, "main", "invoice-matcher", "production")


def test_a_users_own_commit_of_an_older_version_is_flagged_in_the_ledger(remote: str, tmp_path: Path) -> None:
    promotion.promote(remote, "main", desired("1"), {}, to_main=True)
    first = show(remote, "main", VERSION_FILE)
    promotion.promote(remote, "main", desired("2"), {}, to_main=True)
    clone = tmp_path / "user"
    gitrepo.git(tmp_path, "clone", "--quiet", remote, str(clone))
    (clone / VERSION_FILE).write_text(first)
    gitrepo.git(clone, "commit", "--quiet", "-am", "put v1 back by hand")
    gitrepo.git(clone, "push", "--quiet", "origin", "main")
    last = ledger.history(remote, "main", "intent-classifier", "staging")[-1]
    assert last.source == "git" and last.flag == "not made by ctcd: put v1 back over v2"


def test_concurrent_promotions_both_land(remote: str) -> None:
    jobs = [
        desired("6", technique="intent-classifier"),
        desired("7", technique="invoice-matcher"),
        desired("8", env="production", technique="intent-classifier"),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        done = [pool.submit(promotion.promote, remote, "main", d, {}, to_main=True) for d in jobs]
    assert [f.exception() for f in done if f.exception()] == []
    for d in jobs:
        assert promotion.current(remote, "main", d.technique, d.environment)["a"]["version"] == d.pin.version  # type: ignore[index]
    assert len(log(remote)) == 1 + len(jobs)  # the initial commit and exactly one per promotion


def test_a_crash_between_commit_and_push_leaves_nothing_and_a_rerun_pushes_once(
    remote: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gitrepo.push_with_retry

    def crash(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt("killed between commit and push")

    monkeypatch.setattr(gitrepo, "push_with_retry", crash)
    with pytest.raises(KeyboardInterrupt):
        promotion.promote(remote, "main", desired("9"), {}, to_main=True)
    assert log(remote, "--", VERSION_FILE) == []  # no orphan commit on the remote
    monkeypatch.setattr(gitrepo, "push_with_retry", real)
    promotion.promote(remote, "main", desired("9"), {}, to_main=True)
    promotion.promote(remote, "main", desired("9"), {}, to_main=True)
    assert len(log(remote, "--", VERSION_FILE)) == 1


def test_bad_names_never_reach_git() -> None:
    with pytest.raises(overlays.GitopsError, match="DNS-1123"):
        promotion.branch_name("staging", "--upload-pack=evil", "1")


def test_a_user_clone_and_plain_git_merge_is_the_promotion(remote: str, tmp_path: Path) -> None:
    result = promotion.promote(remote, "main", desired("11", env="production"), {}, to_main=False)
    user = tmp_path / "user"
    gitrepo.git(tmp_path, "clone", "--quiet", remote, str(user))
    gitrepo.git(user, "merge", "--quiet", "--no-ff", "--no-edit", f"origin/{result.branch}")
    gitrepo.git(user, "push", "--quiet", "origin", "main")
    assert promotion.current(remote, "main", "intent-classifier", "production")["a"]["version"] == "11"  # type: ignore[index]


def test_an_invalid_overlay_is_never_committed(remote: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.delivery.manifests import ManifestError

    def broken(desired: overlays.Desired) -> dict[str, str]:
        return {
            "overlays/staging/kustomization.yaml": "resources: [does-not-exist.yaml]\n",
            "overlays/staging/version.yaml": "{}\n",
        }

    monkeypatch.setattr(overlays, "overlay_files", broken)
    with pytest.raises(ManifestError, match="kubectl kustomize"):
        promotion.promote(remote, "main", desired("12"), {}, to_main=True)
    assert log(remote, "--", VERSION_FILE) == []


def test_one_read_gives_every_pin_and_isolates_a_broken_file(remote: str) -> None:
    promotion.promote(remote, "main", desired("3"), {}, to_main=True)
    promotion.promote(remote, "main", desired("7", "production", "invoice-matcher"), {}, to_main=True)
    with gitrepo.scratch_clone(remote, "main") as repo:
        broken = "gitops/models/invoice-matcher/overlays/staging/version.yaml"
        gitrepo.write_files(repo, {broken: "kind: [not a version file\n"})
        gitrepo.commit(repo, "break a file by hand", {})
        gitrepo.git(repo, "push", "--quiet", "origin", "main")
    pins = promotion.pinned(remote, "main")
    assert pins[("intent-classifier", "staging")]["a"]["version"] == "3"  # type: ignore[index]
    assert pins[("invoice-matcher", "production")]["a"]["version"] == "7"  # type: ignore[index]
    assert isinstance(pins[("invoice-matcher", "staging")], overlays.GitopsError)
    assert ("intent-classifier", "production") not in pins
    staging = dict(pins[("intent-classifier", "staging")])  # type: ignore[arg-type]
    assert staging.pop("committed_ms") > 0
    assert staging == promotion.current(remote, "main", "intent-classifier", "staging")


def test_a_stale_branch_is_refused_naming_both_versions_unless_forced(remote: str) -> None:
    old = promotion.promote(remote, "main", desired("2", env="production"), {}, to_main=False)
    promotion.promote(remote, "main", desired("3", env="production"), {}, to_main=True)  # pins v3, prunes v2's branch
    assert not _branches(remote, "promote/production/intent-classifier/")
    older = promotion.promote(remote, "main", desired("2", env="production"), {}, to_main=False)
    assert older.branch == old.branch
    with pytest.raises(promotion.StaleBranchError, match=r"v2, which is not newer than the pin: production pins .* v3"):
        promotion.merge(remote, "main", older.branch)
    assert promotion.current(remote, "main", "intent-classifier", "production")["a"]["version"] == "3"  # type: ignore[index]
    promotion.merge(remote, "main", older.branch, force=True)
    assert promotion.current(remote, "main", "intent-classifier", "production")["a"]["version"] == "2"  # type: ignore[index]


def test_a_branch_superseded_by_a_later_promotion_is_refused(remote: str) -> None:
    proposal = promotion.promote(remote, "main", desired("9", env="production"), {}, to_main=False)
    promotion.promote(remote, "main", desired("5", env="production"), {}, to_main=True)  # a later promotion
    with pytest.raises(promotion.StaleBranchError, match=r"v9\) was superseded by commit .*ctcd promote intent-cl"):
        promotion.merge(remote, "main", proposal.branch)
    again = promotion.promote(remote, "main", desired("9", env="production"), {}, to_main=False)
    assert again.changed and again.branch == proposal.branch  # made afresh from main: no loop
    promotion.merge(remote, "main", again.branch)
    assert promotion.current(remote, "main", "intent-classifier", "production")["a"]["version"] == "9"  # type: ignore[index]
    newer = promotion.promote(remote, "main", desired("10", env="production"), {}, to_main=False)
    promotion.merge(remote, "main", newer.branch)
    assert _branches(remote, "promote/production/intent-classifier/") == []  # merged and superseded ones are gone


def _branches(remote: str, prefix: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", remote, "branch", "--list", f"{prefix}*"], capture_output=True, text=True)
    return out.stdout.split()


def test_a_first_canary_took_all_the_traffic_so_rollback_restores_it_at_100(remote: str) -> None:
    promotion.promote(remote, "main", desired("1", strategy="canary", canary_percent=20), {}, to_main=True)  # r1
    promotion.promote(remote, "main", desired("2"), {}, to_main=True)  # r2
    rollback.rollback(remote, "main", "intent-classifier", "staging")
    assert _served(remote) == ("1", None)  # not a 20% canary against v2
    subject, strategy = log(remote, "-1", "--format=%s%n%(trailers:key=Strategy,valueonly)")[:2]
    assert subject.endswith("to revision 1 (v1 100%)") and strategy == "full"  # the record says what serves


def test_a_plain_git_merge_of_a_stale_branch_is_flagged_in_the_ledger(remote: str, tmp_path: Path) -> None:
    promotion.promote(remote, "main", desired("3", env="production"), {}, to_main=True)
    stale = promotion.promote(remote, "main", desired("2", env="production"), {}, to_main=False)
    user = tmp_path / "user"
    gitrepo.git(tmp_path, "clone", "--quiet", remote, str(user))
    gitrepo.git(user, "merge", "--quiet", "--no-ff", "--no-edit", f"origin/{stale.branch}")  # no ctcd refusal here
    gitrepo.git(user, "push", "--quiet", "origin", "main")
    last = ledger.history(remote, "main", "intent-classifier", "production")[-1]
    assert last.version == "2" and last.flag.startswith("a plain git merge put v2 back over v3")
    forced = promotion.promote(remote, "main", desired("1", env="production"), {}, to_main=False)
    promotion.merge(remote, "main", forced.branch, force=True)  # `ctcd merge --force` is the user's own choice
    assert ledger.history(remote, "main", "intent-classifier", "production")[-1].flag == ""


def test_rolling_back_to_an_ab_split_restores_the_split_and_it_renders(remote: str, tmp_path: Path) -> None:
    from workflows.delivery.manifests import kustomize

    promotion.promote(remote, "main", desired("1"), {}, to_main=True)
    promotion.promote(remote, "main", desired("1", strategy="ab", b_pin=pin("2"), weights=(70, 30)), {}, True)
    promotion.promote(remote, "main", desired("2"), {}, to_main=True)  # ends the split: the ab component goes
    rollback.rollback(remote, "main", "intent-classifier", "staging")
    checkout = tmp_path / "checkout"
    gitrepo.git(tmp_path, "clone", "--quiet", remote, str(checkout))
    docs = kustomize(checkout / "gitops" / "models" / "intent-classifier" / "overlays" / "staging")
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert ("InferenceGraph", "intent-classifier-ab") in kinds and ("InferenceService", "intent-classifier-b") in kinds
    last = ledger.history(remote, "main", "intent-classifier", "staging")[-1]
    assert last.source == "rollback" and last.traffic == "A/B v1 70% / v2 30%"
