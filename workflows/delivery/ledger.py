"""The promotion ledger: every change of an environment's version file on main, read back from git.

Each entry is one revision, numbered from 1 like ``kubectl rollout history``: when it landed, what it pinned
(version, strategy, traffic), its lineage (run, dataset version, metric) from the commit trailers, and its source:
``training``, ``registry`` (a stage or alias change in MLflow), ``merge`` (a promotion branch), ``rollback``,
``rollout``, ``cli``, or ``git`` (a commit or merge ctcd did not make).  A ``git`` entry that put the environment
back on an older version than the one before it is flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.delivery import overlays
from workflows.platform import gitrepo

SEP = "\x1f"


@dataclass(frozen=True)
class Entry:
    """One revision of an environment in the ledger."""

    revision: int
    commit: str
    time: str
    subject: str
    version: str
    strategy: str
    traffic: str
    run_id: str
    dataset_version: str
    metric: str
    source: str
    rollback_to: int | None
    flag: str
    pins: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return asdict(self)


def version_path(technique: str, environment: str) -> str:
    """Where an environment's version file lives."""
    if environment not in overlays.ENVIRONMENTS:
        raise overlays.GitopsError(f"environment {environment!r} must be one of {', '.join(overlays.ENVIRONMENTS)}")
    return f"gitops/models/{overlays.check_name(technique, 'technique')}/overlays/{environment}/version.yaml"


def read(repo: Path, technique: str, environment: str) -> list[Entry]:
    """The ledger of one environment in a clone whose HEAD is main, oldest first."""
    path = version_path(technique, environment)
    fmt = SEP.join(["%H", "%ct", "%s", "%P"])
    log = gitrepo.git(repo, "log", "--first-parent", "--reverse", f"--format={fmt}", "HEAD", "--", path).stdout
    entries: list[Entry] = []
    for line in log.splitlines():
        commit, stamp, subject, parents = line.split(SEP)
        shown = gitrepo.git(repo, "show", f"{commit}:{path}", check=False)
        if shown.returncode != 0:
            continue  # the file was removed in this commit
        pins = overlays.read_version(shown.stdout)
        merged = parents.split()[1] if len(parents.split()) > 1 else ""
        trailers = gitrepo.trailers(repo, merged or commit)
        entries.append(_entry(len(entries) + 1, commit, int(stamp), subject, pins, trailers, bool(merged), entries))
    return entries


def _entry(
    number: int,
    commit: str,
    stamp: int,
    subject: str,
    pins: dict[str, Any],
    trailers: dict[str, str],
    merged: bool,
    before: list[Entry],
) -> Entry:
    a = pins["a"]
    source = _source(subject, trailers, merged)
    flag = ""
    if before and _older(a["version"], before[-1].version):
        if source == "git":
            flag = f"not made by ctcd: put v{a['version']} back over v{before[-1].version}"
        elif merged and not subject.startswith("Merge promote/"):
            flag = f"a plain git merge put v{a['version']} back over v{before[-1].version} (`ctcd merge` refuses it)"
    rollback_to = trailers.get("Rollback-To-Revision", "")
    return Entry(
        revision=number,
        commit=commit,
        time=datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        subject=subject,
        version=str(a["version"]),
        strategy=a["strategy"],
        traffic=_traffic(pins),
        run_id=a["run_id"] or trailers.get("MLflow-Run-Id", ""),
        dataset_version=a["dataset_version"] or trailers.get("Dataset-Version", ""),
        metric=trailers.get("Metric", ""),
        source=source,
        rollback_to=int(rollback_to) if rollback_to.isdigit() else None,
        flag=flag,
        pins=pins,
    )


def _older(version: str, than: str) -> bool:
    return version.isdigit() and than.isdigit() and int(version) < int(than)


def _source(subject: str, trailers: dict[str, str], merged: bool) -> str:
    if trailers.get("Source"):
        return trailers["Source"] if not merged else f"merge ({trailers['Source']})"
    if merged and subject.startswith("Merge promote/"):
        return "merge"
    if trailers.get("Promoted-By") == "registry-bridge":
        return "registry"
    if "Metric" in trailers:
        return "training"
    if "MLflow-Version" in trailers:
        return "cli"
    return "git"


def _traffic(pins: dict[str, Any]) -> str:
    a, b = pins["a"], pins["b"]
    if pins["weights"] and b is not None:
        weights = pins["weights"]
        return f"A/B v{a['version']} {weights.get(a['name'], '?')}% / v{b['version']} {weights.get(b['name'], '?')}%"
    if pins["canary"] is not None:
        return f"canary v{a['version']} {pins['canary']}%"
    return f"v{a['version']} 100%"


def history(remote: str, main: str, technique: str, environment: str) -> list[Entry]:
    """The ledger of one environment on the remote's main branch, oldest first."""
    with gitrepo.scratch_clone(remote, main, only=version_path(technique, environment)) as repo:
        return read(repo, technique, environment)
