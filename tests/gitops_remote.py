"""A throwaway GitOps remote for tests: a bare repository holding this project's `gitops/models` bases."""

from __future__ import annotations

import shutil
from pathlib import Path

from workflows.platform import gitrepo
from workflows.settings import REPO_ROOT


def bare_remote(folder: Path) -> Path:
    """Create ``folder/gitops.git`` from the technique bases (no overlays: nothing promoted yet); return it."""
    source = folder / "source"
    shutil.copytree(
        REPO_ROOT / "gitops" / "models", source / "gitops" / "models", ignore=shutil.ignore_patterns("overlays")
    )
    gitrepo.git(folder, "init", "--quiet", "--initial-branch", "main", str(source))
    gitrepo.git(source, "add", ".")
    gitrepo.git(source, "commit", "--quiet", "-m", "initial")
    bare = folder / "gitops.git"
    gitrepo.ensure_remote(bare, source, "main")
    return bare
