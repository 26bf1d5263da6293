"""Promotion branches in a scratch clone: made afresh when superseded, found merged, and a canary's previous version.

Helpers of :mod:`workflows.delivery.promotion`; each takes the clone and acts on it only.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from workflows.delivery import overlays
from workflows.platform import gitrepo

_logger = logging.getLogger(__name__)


def with_mode(repo: Path, desired: overlays.Desired) -> overlays.Desired:
    """The desired state in the deployment mode its technique's ``base/`` was compiled with (serverless if none)."""
    base = repo / "gitops" / "models" / desired.technique / "base" / "inferenceservice.yaml"
    mode = overlays.mode_of(base.read_text()) if base.is_file() else "serverless"
    return desired if mode == desired.mode else dataclasses.replace(desired, mode=mode)


def with_previous(repo: Path, desired: overlays.Desired, path: str) -> overlays.Desired:
    """A canary records the version it splits against, as KServe keeps it: the one rolled out when it is made.

    Over a full pin that is the pinned version; over another canary it stays that canary's own previous one; a
    first canary has none (it takes all the traffic).  In Standard mode the manifest itself names that pin as its
    stable predictor, so the whole pin is carried, not only its version.
    """
    desired = with_mode(repo, desired)
    if desired.strategy != "canary":
        return desired
    shown = gitrepo.git(repo, "show", f"HEAD:{path}", check=False)
    now = overlays.read_version(shown.stdout) if shown.returncode == 0 else None
    if now is None:
        return desired
    if now["canary"] is None and now["a"]["version"] != desired.pin.version:
        previous, stable = str(now["a"]["version"]), now["a"]
    else:
        previous, stable = str(now.get("previous", "")), now.get("stable")
    extra = desired.extra
    if previous and "previous-version" not in extra:
        extra = {**extra, "previous-version": previous}
    pin = None
    if desired.mode == "standard" and stable and stable["version"] != desired.pin.version:
        pin = overlays.Pin(stable["version"], stable["storage_uri"], stable["sha256"], stable.get("run_id", ""))
    return dataclasses.replace(desired, extra=extra, stable=pin)


def checkout(repo: Path, branch: str, path: str) -> None:
    """Check out the promotion branch: the remote's, unless main changed its version file since (then afresh).

    A branch that a later promotion superseded cannot be merged; promoting the version again makes it anew from
    main, so "promote again" always leads somewhere.
    """
    if gitrepo.remote_branch_exists(repo, branch):
        gitrepo.git(repo, "fetch", "--quiet", "origin", branch)
        later = superseded_by(repo, branch, path)
        if not later:
            gitrepo.git(repo, "checkout", "--quiet", "-B", branch, f"origin/{branch}")
            return
        _logger.info("%s was superseded by %s on main; making it afresh from main", branch, later)
        gitrepo.git(repo, "push", "--quiet", "origin", "--delete", branch, check=False)
    gitrepo.git(repo, "checkout", "--quiet", "-B", branch)


def superseded_by(repo: Path, branch: str, path: str) -> str:
    """The commit on main that changed ``path`` after ``branch`` was made from it ('' when none did)."""
    base = gitrepo.git(repo, "merge-base", "HEAD", f"origin/{branch}").stdout.strip()
    return gitrepo.git(repo, "log", "-1", "--format=%h", f"{base}..HEAD", "--", path).stdout.strip()


def merged_already(repo: Path, branch: str) -> str:
    """The merge commit on main that merged ``branch`` ('' when there is none)."""
    found = gitrepo.git(repo, "log", "--format=%H %s", "--fixed-strings", f"--grep=Merge {branch}", check=False)
    subjects = (line.split(" ", 1) for line in found.stdout.splitlines() if " " in line)
    return next((commit for commit, subject in subjects if subject == f"Merge {branch}"), "")
