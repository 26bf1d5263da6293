"""Rollback: make an earlier revision's model serve again by pinning it explicitly, a new commit and never a revert.

The walk goes back through the ledger (the promotion commits' trailers on main): without a target revision it
picks the latest earlier revision that served another model at 100% (or in an A/B split), and after a
rollback it goes on from the revision it restored, so repeated rollbacks keep going back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from workflows.delivery import branches, ledger, overlays, promotion
from workflows.platform import gitrepo

_logger = logging.getLogger(__name__)


class RollbackError(gitrepo.GitError):
    """A rollback has nowhere to go, or cannot restore the revision asked for; the message says why."""


def rollback(
    remote: str,
    main: str,
    technique: str,
    environment: str,
    to_revision: int | None = None,
    evidence: dict[str, str] | None = None,
) -> promotion.Result:
    """Make an earlier model serve again by pinning it explicitly: a new commit, never a revert.

    Without ``to_revision`` the target is the latest earlier revision that served another model at 100% (or in an
    A/B split); after a rollback the walk continues from the revision it restored, so repeated rollbacks keep
    going back.  The commit carries ``Rollback-Of`` (the commit it undoes) and ``Rollback-To-Revision``.

    Raises:
        RollbackError: Nothing to roll back to, no such revision, or a canary that cannot be restored as it was.
    """
    path = promotion.version_path(technique, environment)
    chosen: dict[str, Any] = {}
    with gitrepo.scratch_clone(remote, main) as repo:

        def apply() -> str | None:
            entries = ledger.read(repo, technique, environment)
            target = _rollback_target(entries, to_revision)
            current = entries[-1]
            files = _restored(repo, path, technique, environment, target, entries)
            if not gitrepo.write_files(repo, files):
                return None
            chosen.update(target=target)
            whole = target.pins["canary"] is not None and not _rolled_out(entries, target.revision - 1)
            strategy, traffic = ("full", f"v{target.version} 100%") if whole else (target.strategy, target.traffic)
            trailers = {
                "Technique": technique,
                "Environment": environment,
                "Strategy": strategy,
                "MLflow-Version": target.version,
                "MLflow-Run-Id": target.run_id,
                "Dataset-Version": target.dataset_version,
                "Model-Sha256": target.pins["a"]["sha256"],
                "Source": "rollback",
                "Rollback-Of": current.commit,
                "Rollback-To-Revision": str(target.revision),
                **(evidence or {}),
            }
            message = f"Roll back {technique} in {environment} to revision {target.revision} ({traffic})"
            return gitrepo.commit(repo, message, trailers)

        if apply() is None:
            head = gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
            return promotion.Result(main, head, changed=False, merged=True)
        pushed = gitrepo.push_with_retry(repo, main, reapply=apply)
    _logger.info("rolled back %s/%s to revision %s: %s", technique, environment, chosen["target"].revision, pushed[:12])
    return promotion.Result(main, pushed, changed=True, merged=True)


def _rollback_target(entries: list[Any], to_revision: int | None) -> Any:
    if not entries:
        raise RollbackError("nothing to roll back: this environment has never been promoted")
    current = entries[-1]
    if to_revision is not None:
        if not 1 <= to_revision <= len(entries) or to_revision == current.revision:
            what = "what serves now" if to_revision == current.revision else "not in the ledger"
            raise RollbackError(f"revision {to_revision} is {what} (revisions 1-{len(entries)}; `ctcd history`)")
        target = entries[to_revision - 1]
        _check_restorable(entries, target)
        return target
    start = current.rollback_to or current.revision
    served = current.pins["a"]["storage_uri"]
    for entry in reversed(entries[: start - 1]):
        if _settled(entries, entry) and entry.pins["a"]["storage_uri"] != served:
            return entry
    raise RollbackError(
        f"nothing earlier to roll back to: no revision before {start} served another model (`ctcd history`)"
    )


def _settled(entries: list[Any], entry: Any) -> bool:
    """Whether a revision served its model at 100% (or in an A/B split): not a canary over an earlier model.

    A canary with nothing rolled out before it gets all the traffic, as KServe gives it.
    """
    return entry.pins["canary"] is None or not _rolled_out(entries, entry.revision - 1)


def _rolled_out(entries: list[Any], upto: int) -> str:
    """The model at 100% as of revision ``upto`` (the latest settled revision up to it)."""
    for entry in reversed(entries[:upto]):
        if _settled(entries, entry):
            return str(entry.pins["a"]["storage_uri"])
    return ""


def _restored(
    repo: Path, path: str, technique: str, environment: str, target: Any, entries: list[Any]
) -> dict[str, str]:
    """The overlay files that make ``target`` serve again: its own, or, for a first canary, that pin at 100%.

    Both of the environment's files are restored, the version file and the kustomization (an A/B split adds the
    ``ab`` component there).
    """
    kustomization = path.replace("/version.yaml", "/kustomization.yaml")
    if target.pins["canary"] is None or _rolled_out(entries, target.revision - 1):
        return {rel: str(gitrepo.git(repo, "show", f"{target.commit}:{rel}").stdout) for rel in (path, kustomization)}
    a = target.pins["a"]
    pin = overlays.Pin(a["version"], a["storage_uri"], a["sha256"], a["run_id"], a["dataset_version"])
    files = overlays.overlay_files(branches.with_mode(repo, overlays.Desired(technique, environment, "full", pin)))
    return {f"gitops/models/{technique}/{rel}": text for rel, text in files.items()}


def _check_restorable(entries: list[Any], target: Any) -> None:
    """A canary splits against whatever is rolled out: restore one only when that is the same model as then."""
    if _settled(entries, target):
        return
    then, now = _rolled_out(entries, target.revision - 1), _rolled_out(entries, len(entries))
    if then != now:
        raise RollbackError(
            f"revision {target.revision} was a canary ({target.traffic}) over a model that no longer serves; KServe "
            "would split it against the current one. Roll back first to the revision that served that model at 100%"
        )
