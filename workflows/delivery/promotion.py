"""Promotions are commits: pin a registered version in an environment's version file and push it.

- ``promote`` commits on ``promote/<env>/<technique>/v<N>`` (merging that branch is the promotion) or, where the
  environment merges by itself (staging by default), straight onto the main branch.
- ``merge`` merges a promotion branch on the remote, like a pull request's merge button; a stale branch (not
  newer than the pin, or superseded by a later promotion) is refused unless forced, and branches a promotion
  superseded are deleted.
- ``rollout`` ends a canary (100% to the new one); :mod:`~workflows.delivery.rollback` pins an earlier
  revision's model again.

Every step is idempotent: a re-run after a crash finds the change already there and makes no second commit,
and a push rejected by a concurrent promotion is rebased (or re-applied) and retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from workflows.delivery import branches, overlays, routing
from workflows.platform import gitrepo

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What a promotion did.

    Attributes:
        branch: The branch the change is on (the main branch when it merged by itself).
        commit: The commit on the remote that carries the change.
        changed: False when the remote already had it (a converged re-run).
        merged: Whether the change is on the main branch.
    """

    branch: str
    commit: str
    changed: bool
    merged: bool


def from_registry(
    client: Any,
    artifacts_bucket: str,
    technique: str,
    version: str,
    environment: str,
    strategy: str = "canary",
    canary_percent: int = 20,
    b_version: str = "",
    weights: str = "50,50",
) -> overlays.Desired:
    """The desired state that pins registered version(s) of a technique in an environment.

    Raises:
        GitopsError: A bad strategy, percent, split or name.
        ValueError: A version without a ctcd sha256 tag, or outside the S3 artifact store.
        MlflowException: No such version.
    """
    from workflows.platform import registry

    def pin(number: str) -> overlays.Pin:
        overlays.check_version(number)
        return overlays.Pin(**registry.pin_fields(client, technique, number, artifacts_bucket))

    try:
        split = tuple(int(w) for w in weights.split(","))
    except ValueError as exc:
        raise overlays.GitopsError(f"weights {weights!r} must be two integers such as 70,30") from exc
    if strategy not in ("full", "canary", "ab"):
        raise overlays.GitopsError(f"strategy {strategy!r} must be canary, full or ab")
    return overlays.Desired(
        technique,
        environment,
        cast(overlays.Strategy, strategy),
        pin(version),
        canary_percent=canary_percent if strategy == "canary" else None,
        b_pin=pin(b_version) if strategy == "ab" and b_version else None,
        weights=(split[0], split[1]) if len(split) == 2 else (0, 0),
    )


def branch_name(environment: str, technique: str, version: str) -> str:
    """``promote/<env>/<technique>/v<N>``, from validated parts only."""
    if environment not in overlays.ENVIRONMENTS:
        raise overlays.GitopsError(f"environment {environment!r} must be one of {', '.join(overlays.ENVIRONMENTS)}")
    return f"promote/{environment}/{overlays.check_name(technique, 'technique')}/v{overlays.check_version(version)}"


@dataclass(frozen=True)
class Branch:
    """A promotion branch's parts."""

    environment: str
    technique: str
    version: str


def parse_branch(branch: str) -> Branch:
    """The parts of ``promote/<env>/<technique>/v<N>``.

    Raises:
        GitError: ``branch`` is not a promotion branch (checked before git is touched).
    """
    parts = branch.split("/")
    try:
        valid = len(parts) == 4 and parts[0] == "promote" and branch_name(parts[1], parts[2], parts[3][1:]) == branch
    except overlays.GitopsError:
        valid = False
    if not valid:
        raise gitrepo.GitError(f"{branch!r} is not a promotion branch (promote/<env>/<technique>/v<N>)")
    return Branch(parts[1], parts[2], parts[3][1:])


def _files(desired: overlays.Desired) -> dict[str, str]:
    return {f"gitops/models/{desired.technique}/{rel}": text for rel, text in overlays.overlay_files(desired).items()}


def _message(desired: overlays.Desired) -> str:
    how = {
        "full": "100%",
        "canary": f"canary {desired.canary_percent}%",
        "ab": f"A/B {desired.weights[0]}/{desired.weights[1]} with v{desired.b_pin.version if desired.b_pin else '?'}",
    }
    return f"Promote {desired.technique} v{desired.pin.version} to {desired.environment} ({how[desired.strategy]})"


def _trailers(desired: overlays.Desired, evidence: dict[str, str]) -> dict[str, str]:
    base = {
        "Technique": desired.technique,
        "Environment": desired.environment,
        "Strategy": desired.strategy,
        "MLflow-Version": desired.pin.version,
        "MLflow-Run-Id": desired.pin.run_id,
        "Dataset-Version": desired.pin.dataset_version,
        "Model-Sha256": desired.pin.sha256,
    }
    return {**base, **{k: v.replace("\n", " ") for k, v in evidence.items()}}


def promote(remote: str, main: str, desired: overlays.Desired, evidence: dict[str, str], to_main: bool) -> Result:
    """Commit the desired state and push it (to ``main`` or to a promotion branch).

    Args:
        remote: The GitOps remote (a path or URL).
        main: The branch Argo CD syncs.
        desired: What the environment should serve.
        evidence: Extra trailers (``Metric``, ``Champion-Metric``…).
        to_main: Push straight to ``main`` instead of a promotion branch.
    """
    overlays.check_ref(main, "main branch")
    message, trailers = _message(desired), _trailers(desired, evidence)
    branch = main if to_main else branch_name(desired.environment, desired.technique, desired.pin.version)
    with gitrepo.scratch_clone(remote, main) as repo:
        if not to_main:
            branches.checkout(repo, branch, version_path(desired.technique, desired.environment))

        def apply() -> str | None:
            wanted = branches.with_previous(repo, desired, version_path(desired.technique, desired.environment))
            if not gitrepo.write_files(repo, _files(wanted)):
                return None
            _validate(repo, wanted)
            return gitrepo.commit(repo, message, trailers)

        if apply() is None:
            head = gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
            _logger.info("%s: already on %s, nothing to commit", message, branch)
            return Result(branch, head, changed=False, merged=to_main)
        pushed = gitrepo.push_with_retry(repo, branch, reapply=apply)
        if to_main:
            prune_branches(repo, desired.environment, desired.technique, desired.pin.version)
    _logger.info("%s: %s on %s", message, pushed[:12], branch)
    return Result(branch, pushed, changed=True, merged=to_main)


def prune_branches(repo: Path, environment: str, technique: str, pinned: str) -> list[str]:
    """Delete this environment's promotion branches of ``technique`` that the pin ``pinned`` superseded.

    Returns:
        The branches deleted from the remote.
    """
    listing = gitrepo.git(repo, "ls-remote", "--heads", "origin", f"refs/heads/promote/{environment}/{technique}/*")
    stale = []
    for line in listing.stdout.splitlines():
        branch = line.split("\t", 1)[1].removeprefix("refs/heads/")
        try:
            if int(parse_branch(branch).version) <= int(pinned):
                stale.append(branch)
        except gitrepo.GitError:
            continue
    if stale:
        gitrepo.git(repo, "push", "--quiet", "origin", "--delete", *stale, check=False)
        _logger.info("deleted superseded promotion branch(es) %s", ", ".join(stale))
    return stale


def _validate(repo: Path, desired: overlays.Desired) -> None:
    """Render the overlay with ``kubectl kustomize`` and check it before anything is committed.

    Raises:
        ManifestError: The rendered manifests are invalid (nothing is committed).
    """
    from workflows.delivery.manifests import kustomize, validate

    overlay = repo / "gitops" / "models" / desired.technique / "overlays" / desired.environment
    validate(kustomize(overlay), f"{desired.technique}/{desired.environment}")


class StaleBranchError(gitrepo.GitError):
    """A promotion branch would put an environment back on an older model, or a later promotion superseded it."""


class AlreadyMerged(gitrepo.GitError):
    """The branch is gone from the remote because it was merged: the state it asked for is there already.

    Args:
        message: Names the branch and the merge commit.
        commit: The merge commit.
    """

    exit_code = 0

    def __init__(self, message: str, commit: str) -> None:
        super().__init__(message)
        self.commit = commit


def merge(remote: str, main: str, branch: str, force: bool = False) -> str:
    """Merge a promotion (or routing) branch into ``main`` on the remote (no fast-forward), then delete the branch.

    A branch whose version is not newer than the environment's pin, or whose version file main changed since the
    branch was made (a later promotion superseded it), is refused unless ``force``.  Branches the merge supersedes
    are deleted too.

    Raises:
        AlreadyMerged: The branch was merged before (nothing to do).
        GitError: The branch does not exist, or the merge conflicts.
        StaleBranchError: The branch is stale (the message names both versions).
    """
    parts = None if routing.is_branch(branch) else parse_branch(branch)  # a routing branch has no version to check
    overlays.check_ref(main, "main branch")
    with gitrepo.scratch_clone(remote, main) as repo:
        if not gitrepo.remote_branch_exists(repo, branch):
            merged_at = branches.merged_already(repo, branch)
            if merged_at:
                raise AlreadyMerged(f"{branch} is already merged into {main} (commit {merged_at[:12]})", merged_at)
            raise gitrepo.GitError(f"branch {branch} does not exist on the remote; `git ls-remote` lists branches")
        gitrepo.git(repo, "fetch", "--quiet", "origin", branch)
        if not force and parts is not None:
            _refuse_stale(repo, branch, parts)

        def apply() -> str | None:
            if (
                gitrepo.git(repo, "merge-base", "--is-ancestor", f"origin/{branch}", "HEAD", check=False).returncode
                == 0
            ):
                return None  # already merged
            gitrepo.git(repo, "merge", "--quiet", "--no-ff", "--no-edit", "-m", f"Merge {branch}", f"origin/{branch}")
            return gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()

        merged = apply()
        head = (
            gitrepo.push_with_retry(repo, main, reapply=apply)
            if merged
            else gitrepo.git(repo, "rev-parse", "HEAD").stdout.strip()
        )
        gitrepo.git(repo, "push", "--quiet", "origin", "--delete", branch, check=False)
        if parts is not None:
            prune_branches(repo, parts.environment, parts.technique, parts.version)
    return head


def _refuse_stale(repo: Path, branch: str, parts: Branch) -> None:
    path = version_path(parts.technique, parts.environment)
    shown = gitrepo.git(repo, "show", f"HEAD:{path}", check=False)
    pinned = overlays.read_version(shown.stdout)["a"]["version"] if shown.returncode == 0 else ""
    where = f"{parts.environment} pins {parts.technique} v{pinned}"
    rollback = gitrepo.trailers(repo, f"origin/{branch}").get("Intent") == "rollback"
    if pinned and int(parts.version) <= int(pinned) and not rollback:  # an explicit rollback goes back on purpose
        raise StaleBranchError(
            f"{branch} would put {parts.environment} on v{parts.version}, which is not newer than the pin: {where}. "
            "Use `ctcd rollback` to go back, or --force to merge anyway"
        )
    later = branches.superseded_by(repo, branch, path)
    if later:
        raise StaleBranchError(
            f"{branch} (v{parts.version}) was superseded by commit {later} on main since it was made ({where}); "
            f"`ctcd promote {parts.technique} {parts.version} --env {parts.environment}` makes it afresh from main, "
            "or --force merges it anyway"
        )


def version_path(technique: str, environment: str) -> str:
    """The version file that pins a technique in an environment, relative to the repository root."""
    return f"gitops/models/{overlays.check_name(technique, 'technique')}/overlays/{environment}/version.yaml"


def rollout(remote: str, main: str, technique: str, environment: str, evidence: dict[str, str] | None = None) -> Result:
    """End a canary: the same pin at 100% (``canaryTrafficPercent`` removed); ``evidence`` adds trailers.

    Raises:
        GitopsError: The environment was never promoted.
    """
    now = current(remote, main, technique, environment)
    if now is None:
        raise overlays.GitopsError(f"{technique} has never been promoted to {environment}")
    a = now["a"]
    pin = overlays.Pin(a["version"], a["storage_uri"], a["sha256"], a["run_id"], a["dataset_version"])
    trailers = {"Source": "rollout", **(evidence or {})}
    return promote(remote, main, overlays.Desired(technique, environment, "full", pin), trailers, True)


def pinned(remote: str, main: str) -> dict[tuple[str, str], dict[str, Any] | overlays.GitopsError]:
    """Every environment's version file on ``main``, parsed, from one clone.

    A file that cannot be read maps to its error, for the caller to report against that technique alone.

    Returns:
        ``{(technique, environment): parsed version file}`` for every version file found, each with
        ``committed_ms``, when main last changed it.
    """
    found: dict[tuple[str, str], dict[str, Any] | overlays.GitopsError] = {}
    with gitrepo.scratch_clone(remote, main, only="gitops/models/*/overlays/*/version.yaml") as repo:
        stamps = _commit_times(repo)
        for path in sorted((Path(repo) / "gitops" / "models").glob("*/overlays/*/version.yaml")):
            try:
                doc = overlays.read_version(path.read_text())
            except overlays.GitopsError as exc:
                found[(path.parts[-4], path.parts[-2])] = exc
                continue
            doc["committed_ms"] = stamps.get(str(path.relative_to(repo)), 0)
            found[(path.parts[-4], path.parts[-2])] = doc
    return found


def _commit_times(repo: Path) -> dict[str, int]:
    """When each version file last changed on main (ms), from one walk of the log."""
    log = gitrepo.git(
        repo,
        "log",
        "--first-parent",
        "--format=@%ct",
        "--name-only",
        "--",
        ":(glob)gitops/models/*/overlays/*/version.yaml",
    ).stdout
    times: dict[str, int] = {}
    stamp = 0
    for line in log.splitlines():
        if line.startswith("@"):
            stamp = int(line[1:]) * 1000
        elif line.strip() and line not in times:
            times[line.strip()] = stamp
    return times


def current(remote: str, main: str, technique: str, environment: str) -> dict[str, Any] | None:
    """The parsed version file of an environment on ``main`` (None before the first promotion)."""
    rel = version_path(technique, environment)
    with gitrepo.scratch_clone(remote, main, only=rel) as repo:
        path = Path(repo) / rel
        return overlays.read_version(path.read_text()) if path.exists() else None
