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


def with_previous(repo: Path, desired: overlays.Desired, path: str) -> overlays.Desired:
    """A canary records the version it splits against, as KServe keeps it: the one rolled out when it is made.

    Over a full pin that is the pinned version; over another canary it stays that canary's own previous one; a
    first canary has none (it takes all the traffic).
    """
    if desired.strategy != "canary" or "previous-version" in desired.extra:
        return desired
    shown = gitrepo.git(repo, "show", f"HEAD:{path}", check=False)
    now = overlays.read_version(shown.stdout) if shown.returncode == 0 else None
    if now is None:
        return desired
    if now["canary"] is None and now["a"]["version"] != desired.pin.version:
        previous = str(now["a"]["version"])
    else:
        previous = str(now.get("previous", ""))
    if not previous:
        return desired
    return dataclasses.replace(desired, extra={**desired.extra, "previous-version": previous})


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
