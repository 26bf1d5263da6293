"""Git for promotions: a scratch clone of the GitOps remote, commits with trailers, pushes that survive races.

Every operation works in a temporary clone, so a user's own working tree and branches are never touched.
Locally the remote is a bare repository in the state folder, created at ``ctcd up`` from the project's own
history; on a cluster it is the hosted repository Argo CD watches.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from workflows.errors import CtcdError

_logger = logging.getLogger(__name__)
AUTHOR = {
    "GIT_AUTHOR_NAME": "ctcd",
    "GIT_AUTHOR_EMAIL": "ctcd@localhost",
    "GIT_COMMITTER_NAME": "ctcd",
    "GIT_COMMITTER_EMAIL": "ctcd@localhost",
}


class GitError(CtcdError, RuntimeError):
    """A git command failed; the message has the command and git's own words."""


def auth_env() -> dict[str, str]:
    """HTTP auth for a hosted remote from ``CTCD_GIT_TOKEN`` (the ``ctcd-git-credentials`` Secret), never on argv."""
    token = os.environ.get("CTCD_GIT_TOKEN", "")
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``cwd`` with ctcd as author and no prompts."""
    env = {**os.environ, **AUTHOR, "GIT_TERMINAL_PROMPT": "0", **auth_env()}
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return result


def ensure_remote(remote: Path, source: Path, branch: str) -> bool:
    """Create the local bare remote from ``source``'s history if it does not exist; True when created.

    Raises:
        GitError: ``source`` has no commits on ``branch``.
    """
    if (remote / "HEAD").exists():
        return False
    remote.parent.mkdir(parents=True, exist_ok=True)
    git(remote.parent, "clone", "--quiet", "--bare", "--branch", branch, "--single-branch", str(source), str(remote))
    git(remote, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    return True


@contextlib.contextmanager
def scratch_clone(remote: str, branch: str, only: str | None = None) -> Iterator[Path]:
    """A temporary clone of ``branch``, removed afterwards.

    Args:
        remote: Path or URL of the remote.
        branch: The branch to check out.
        only: A glob pathspec (``gitops/models/*/overlays/*/version.yaml``): check out just the matching files,
            for readers of a large repository.
    """
    folder = Path(tempfile.mkdtemp(prefix="ctcd-git-"))
    try:
        if only is None:
            git(folder, "clone", "--quiet", "--branch", branch, "--", remote, "repo")
        else:
            git(folder, "clone", "--quiet", "--no-checkout", "--branch", branch, "--", remote, "repo")
            git(folder / "repo", "checkout", "HEAD", "--", f":(glob){only}", check=False)  # no match: no files
        yield folder / "repo"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_files(repo: Path, files: dict[str, str]) -> bool:
    """Write files and stage them; True when anything changed."""
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "--", *files)
    return git(repo, "diff", "--cached", "--quiet", check=False).returncode != 0


def commit(repo: Path, message: str, trailers: dict[str, str]) -> str:
    """Commit what is staged with ``Key: value`` trailers; return the commit id."""
    body = message.rstrip() + "\n\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())
    git(repo, "commit", "--quiet", "-m", body)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def push_with_retry(repo: Path, branch: str, reapply: callable | None = None, attempts: int = 6) -> str:  # type: ignore[valid-type]
    """Push HEAD to ``branch``; on a rejected push fetch, rebase (or re-apply) and try again.

    Args:
        repo: The scratch clone.
        branch: Remote branch to update.
        reapply: Called after a failed rebase on a fresh ``origin/branch`` to redo the change; returns the new
            commit, or None when the change is already there.
        attempts: How many pushes to try.

    Returns:
        The commit that is on the remote branch.

    Raises:
        GitError: Every attempt was rejected.
    """
    for attempt in range(attempts):
        pushed = git(repo, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            return git(repo, "rev-parse", "HEAD").stdout.strip()
        _logger.info("push to %s rejected (attempt %d): %s", branch, attempt + 1, pushed.stderr.strip())
        time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        git(repo, "fetch", "--quiet", "origin", branch)
        if git(repo, "rebase", "--quiet", f"origin/{branch}", check=False).returncode != 0:
            git(repo, "rebase", "--abort", check=False)
            git(repo, "reset", "--quiet", "--hard", f"origin/{branch}")
            if reapply is None or reapply() is None:
                return git(repo, "rev-parse", "HEAD").stdout.strip()
    raise GitError(f"could not push to {branch} after {attempts} attempts (the remote keeps moving)")


def remote_branch_exists(repo: Path, branch: str) -> bool:
    """Whether the remote has ``branch``."""
    return git(repo, "ls-remote", "--exit-code", "--heads", "origin", branch, check=False).returncode == 0


def trailers(repo: Path, rev: str) -> dict[str, str]:
    """The ``Key: value`` trailers of a commit."""
    out = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
