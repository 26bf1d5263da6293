"""Refresh the vendored CRDs from local snapshots of their repositories: ``make refresh-crds CRD_SNAPSHOTS=DIR``.

``DIR`` holds one git directory per repository, as ``DIR/<owner>+<name>/repo`` (a bare clone or a snapshot read at
development time). The revisions and files are those of ``sources.json``; nothing is downloaded, so CI never runs
this: it validates against what is committed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _show(git_dir: Path, revision: str, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{revision}:{path}"], check=True, capture_output=True
    ).stdout


def refresh(snapshots: Path) -> list[Path]:
    """Write every vendored file (CRDs and licences) afresh; return the paths written."""
    written = []
    for project, source in json.loads((HERE / "sources.json").read_text()).items():
        git_dir = snapshots / source["repository"].replace("/", "+") / "repo"
        if not git_dir.is_dir():
            raise SystemExit(f"no snapshot of {source['repository']} at {git_dir}")
        folder = HERE / project
        folder.mkdir(exist_ok=True)
        for path in [*source["files"], source["licence"]]:
            target = folder / Path(path).name
            target.write_bytes(_show(git_dir, source["revision"], path))
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Refresh from the snapshots folder given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("snapshots", type=Path)
    args = parser.parse_args(argv)
    for path in refresh(args.snapshots):
        print(path.relative_to(HERE.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
