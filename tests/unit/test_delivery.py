"""Argo CD's words for local serving: Synced/OutOfSync against main's head, Healthy/Progressing/Degraded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflows.cli import render
from workflows.delivery import observed
from workflows.platform import gitrepo
from workflows.settings import Settings


def _remote(tmp_path: Path) -> tuple[Settings, str]:
    work = tmp_path / "work"
    work.mkdir()
    gitrepo.git(work, "init", "--quiet", "-b", "main")
    (work / "README").write_text("x")
    gitrepo.git(work, "add", "README")
    gitrepo.git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one")
    gitrepo.git(tmp_path, "clone", "--quiet", "--bare", str(work), "remote.git")
    settings = Settings(state_dir=tmp_path / "state", git_remote=str(tmp_path / "remote.git"))
    settings.state_dir.mkdir()
    return settings, gitrepo.git(work, "rev-parse", "HEAD").stdout.strip()


def _item(ready: str, reason: str = "", message: str = "") -> dict[str, Any]:
    condition = {"type": "Ready", "status": ready, "reason": reason, "message": message}
    return {"metadata": {"name": "m", "namespace": "ctcd-staging"}, "status": {"conditions": [condition]}}


def test_health_follows_the_ready_condition() -> None:
    assert observed.health(_item("True")) == ("Healthy", "")
    assert observed.health(_item("False", "RevisionLoading", "loading m-00002")) == ("Progressing", "loading m-00002")
    assert observed.health(_item("False", "RevisionFailed", "sha256 mismatch")) == ("Degraded", "sha256 mismatch")
    assert observed.health(_item("False", "ServingDown", "not running"))[0] == "Degraded"


def test_sync_compares_the_served_commit_with_mains_head(tmp_path: Path) -> None:
    settings, head = _remote(tmp_path)
    assert observed.sync(settings, {"commit": head}).status == "Synced"
    behind = observed.sync(settings, {"commit": "0" * 40})
    assert behind.status == "OutOfSync" and f"main is at {head[:12]}" in behind.reason
    broken = observed.sync(settings, {"commit": head, "error": f"cannot apply {head[:12]}: bad overlay"})
    assert broken.status == "OutOfSync" and "bad overlay" in broken.reason
    gone = Settings(state_dir=settings.state_dir, git_remote=str(tmp_path / "nowhere.git"))
    assert observed.sync(gone, {"commit": head}).status == "Unknown"


def test_get_isvc_shows_sync_health_and_commit(tmp_path: Path) -> None:
    settings, head = _remote(tmp_path)
    (settings.state_dir / "serving").mkdir()
    (settings.state_dir / "serving" / "status.json").write_text(json.dumps({"commit": head}))
    items = [_item("False", "RevisionLoading", "loading m-00002")]
    observed.annotate(settings, items)
    assert items[0]["status"]["delivery"] == {
        "commit": head, "sync": "Synced", "health": "Progressing", "reason": "loading m-00002", "flag": ""
    }  # fmt: skip
    table = render.isvc_table(items)
    assert [c.header for c in table.columns][-2:] == ["SYNC", "HEALTH"]
    assert render.delivery_notes(items) == [
        f"serving commit {head[:12]}",
        "ctcd-staging/m: Synced/Progressing: loading m-00002",
    ]
