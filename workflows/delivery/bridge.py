"""The registry bridge: a move in the MLflow registry asks for a promotion; the registry shows only what serves.

Git's main branch says what serves (Argo CD syncs it). Each pass:

1. finds the registry moves a person made since the last pass (:func:`requests`): a version moved into stage
   ``Staging`` or ``Production``, or one of the aliases ``staging``, ``production`` or ``champion`` (staging's,
   the gate's baseline) set on a version. The latest move per environment wins; a git change made after a stage
   move wins over it.
2. turns each into a promotion (:func:`_promote`): a commit to main where the environment merges by itself, else a
   ``promote/<env>/<technique>/v<N>`` branch for a person to merge. A version older than the one pinned is a
   rollback: a full move, which ``ctcd merge`` takes without ``--force``.
3. writes the registry from git (:mod:`workflows.delivery.markers`): aliases, stages and the ``ctcd.serving`` tag
   say what serves, and a version whose promotion waits for a merge carries the ``ctcd.pending`` tag. Markers a
   person moved or cleared without a promotion behind them (a deleted alias, an archived version that serves)
   are set back.

What the bridge last wrote is kept outside the registry (:mod:`workflows.delivery.bridge_state`), so its own
writes are never taken for moves. MLflow has webhooks for alias changes but none for stage changes, so the bridge
reconciles on a timer (a CronWorkflow on a cluster, a loop next to the platform locally) and on verified webhooks.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.delivery import bridge_state, markers, overlays, promotion
from workflows.platform import gitrepo, mlflow_tags, registry
from workflows.settings import Settings

_logger = logging.getLogger(__name__)
ENV_OF_STAGE = {stage: env for env, stage in markers.STAGE.items()}
CANARY_PERCENT = 20


@dataclass(frozen=True)
class Action:
    """What one reconcile did for one technique and environment."""

    technique: str
    environment: str
    kind: str  # "in-sync", "promoted", "proposed", "registry-updated", "waiting", "error"
    detail: str


@dataclass(frozen=True)
class View:
    """One read of a registered model: its aliases and tags, and its versions with their stages and tags."""

    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[Any]


@dataclass(frozen=True)
class Request:
    """A person's registry move that asks an environment to serve a version."""

    environment: str
    version: str
    stamp: int
    how: str


def read(client: Any, name: str) -> View | None:
    """Read a registered model in two calls (None when it is not registered or has no versions)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return None
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        return None
    return View({k: str(v) for k, v in (model.aliases or {}).items()}, dict(model.tags or {}), list(versions))


def requests(view: View, last: Mapping[str, Any], now_ms: int) -> dict[str, Request]:
    """The moves a person made since the bridge last wrote the registry, the latest per environment."""
    if not last:
        return {}  # no memory: git says what serves, nothing is asked
    found: list[Request] = []
    for alias in sorted(markers.managed_aliases()):
        env, version = markers.environment_of(alias), view.aliases.get(alias, "")
        if env and version and version != last.get("aliases", {}).get(alias):
            found.append(Request(env, version, now_ms, f"alias {alias}"))
    seen_stages = last.get("stages", {})
    for item in view.versions:
        stage, version = str(item.current_stage), str(item.version)
        if stage in ENV_OF_STAGE and stage != seen_stages.get(version, "None"):
            found.append(Request(ENV_OF_STAGE[stage], version, int(item.last_updated_timestamp or 0), f"stage {stage}"))
    latest: dict[str, Request] = {}
    for request in found:
        if request.environment not in latest or request.stamp >= latest[request.environment].stamp:
            latest[request.environment] = request
    return latest


def _stale(request: Request, docs: Mapping[str, Any], last: Mapping[str, Any]) -> bool:
    """Whether git moved this environment after the move was made (then git's later change wins)."""
    doc = docs.get(request.environment)
    moved = str(doc["a"]["version"]) if doc else ""
    return (
        moved != last.get("pinned", {}).get(request.environment, moved)
        and int((doc or {}).get("committed_ms", 0)) > request.stamp
    )


def _promote(settings: Settings, client: Any, name: str, request: Request, pinned: str) -> tuple[Action, str]:
    """Commit the request (to main, or a branch waiting for a merge); return the action and the branch."""
    env, version = request.environment, request.version
    pin = overlays.Pin(**registry.pin_fields(client, name, version, settings.artifacts_bucket))
    evidence = {
        **registry.metric_evidence(client, name, version),
        "Promoted-By": "registry-bridge",
        "Registry-Change": f"{request.how} = v{version}",
        "Source": "registry",
    }
    if pinned and int(version) < int(pinned):
        desired = overlays.Desired(name, env, "full", pin)
        evidence |= {"Rollback-Of": f"v{pinned}", "Intent": "rollback"}
    elif pinned:
        desired = overlays.Desired(name, env, "canary", pin, canary_percent=CANARY_PERCENT)
    else:
        desired = overlays.Desired(name, env, "full", pin)
    direct = settings.merges_by_itself(env)
    result = promotion.promote(settings.git_remote, settings.git_branch, desired, evidence, to_main=direct)
    how = "rollback to" if "Intent" in evidence else desired.strategy
    detail = f"{request.how} asked for v{version}: {how} on {result.branch} ({result.commit[:12]})"
    _logger.info("bridge %s/%s: %s", env, name, detail)
    return Action(name, env, "promoted" if direct else "proposed", detail), ("" if direct else result.branch)


def show(
    client: Any,
    name: str,
    view: View,
    shown: markers.Projection,
    pending: Mapping[str, str],
    before: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the projection into the registry (only what differs); return what was changed, for the log.

    A version that serves nowhere but holds a stage goes back to the stage it had (``None`` for one a person just
    moved, which waits for a merge), or to ``Archived`` once it stopped serving.
    """
    done: list[str] = []
    for alias in sorted(markers.managed_aliases()):
        want, have = shown.aliases.get(alias, ""), view.aliases.get(alias, "")
        if want and want != have:
            client.set_registered_model_alias(name, alias, want)
            done.append(f"@{alias}=v{want}")
        elif have and not want:
            client.delete_registered_model_alias(name, alias)
            done.append(f"@{alias} removed")
    for item in view.versions:
        version, stage = str(item.version), str(item.current_stage)
        was = (before or {}).get(version, "")
        idle = was if was in ("None", markers.ARCHIVED) else markers.ARCHIVED
        want = shown.stages.get(version) or (idle if stage in ENV_OF_STAGE else stage)
        if want != stage:
            client.transition_model_version_stage(name, version, want, archive_existing_versions=False)
            done.append(f"v{version} {want}")
        done += _tag(client, name, item, markers.SERVING_TAG, ", ".join(shown.serving.get(version, [])))
        done += _tag(client, name, item, markers.PENDING_TAG, pending.get(version, ""))
    return done


def _tag(client: Any, name: str, item: Any, key: str, value: str) -> list[str]:
    have = str((getattr(item, "tags", None) or {}).get(key, ""))
    if value == have:
        return []
    if value:
        client.set_model_version_tag(name, str(item.version), key, value)
        return [f"v{item.version} {key}={value!r}"]
    client.delete_model_version_tag(name, str(item.version), key)
    return [f"v{item.version} {key} removed"]


def pending_branches(remote: str) -> dict[str, dict[str, str]]:
    """Promotion branches waiting for a merge: technique → version → what its ``ctcd.pending`` tag says."""
    listed = subprocess.run(
        ["git", "ls-remote", "--heads", "--", remote, "refs/heads/promote/*"], capture_output=True, text=True
    )
    found: dict[str, dict[str, str]] = {}
    for line in listed.stdout.splitlines():
        branch = line.split("\t", 1)[-1].removeprefix("refs/heads/")
        try:
            parts = promotion.parse_branch(branch)
        except gitrepo.GitError:
            continue
        note = f"{parts.environment}: waits for `ctcd merge {branch}`"
        mine = found.setdefault(parts.technique, {})
        mine[parts.version] = f"{mine[parts.version]}; {note}" if parts.version in mine else note
    return found


def sync(
    settings: Settings,
    client: Any,
    name: str,
    seen: bridge_state.Seen,
    docs: dict[str, Any],
    pending: Mapping[str, str],
) -> list[Action]:
    """One technique: act on its registry moves, then show in the registry what git serves."""
    view = read(client, name)
    if view is None:
        return [Action(name, env, "in-sync", "not registered") for env in markers.ENVIRONMENTS]
    last = seen.get(name, {})
    actions, pending = [], dict(pending)
    for env, request in sorted(requests(view, last, int(time.time() * 1000)).items()):
        pinned = str(docs[env]["a"]["version"]) if docs.get(env) else ""
        if request.version == pinned or _stale(request, docs, last):
            continue
        action, branch = _promote(settings, client, name, request, pinned)
        actions.append(action)
        if branch:
            note = f"{env}: waits for `ctcd merge {branch}`"
            pending[request.version] = f"{pending[request.version]}; {note}" if request.version in pending else note
        else:
            docs[env] = promotion.current(settings.git_remote, settings.git_branch, name, env)
    shown = markers.project(docs)
    done = show(client, name, view, shown, pending, dict(last.get("stages", {})))
    after = read(client, name) if done else view
    seen[name] = _memory(after or view, shown)
    if done:
        _logger.info("bridge %s: the registry shows what serves: %s", name, ", ".join(done))
    touched = {a.environment for a in actions}
    kind = "registry-updated" if done else "in-sync"
    return actions + [
        Action(name, env, kind, f"v{shown.pinned[env] or '-'}") for env in markers.ENVIRONMENTS if env not in touched
    ]


def _memory(view: View, shown: markers.Projection) -> dict[str, Any]:
    """What the bridge leaves in the registry, so that only a person's later change counts as a move."""
    return {
        "aliases": {a: v for a, v in view.aliases.items() if a in markers.managed_aliases()},
        "stages": {str(v.version): str(v.current_stage) for v in view.versions},
        "pinned": dict(shown.pinned),
    }


def reconcile_once(settings: Settings) -> list[Action]:
    """One pass over every technique of this repository that has a registered version."""
    from models.contract import discover

    return reconcile(settings, sorted(discover()))


def reconcile(settings: Settings, techniques: Iterable[str]) -> list[Action]:
    """One pass over ``techniques``; git is read once, the registry once per technique."""
    client = registry.client(settings.mlflow_tracking_uri)
    store = bridge_state.store(settings)
    with store.locked():
        seen = store.load()
        pins = promotion.pinned(settings.git_remote, settings.git_branch)
        waiting = pending_branches(settings.git_remote)
        actions: list[Action] = []
        for name in techniques:
            actions += _technique(settings, client, name, seen, pins, waiting.get(name, {}))
        store.save(seen)
    return actions


def _technique(
    settings: Settings,
    client: Any,
    name: str,
    seen: bridge_state.Seen,
    pins: Mapping[tuple[str, str], Any],
    pending: Mapping[str, str],
) -> list[Action]:
    try:
        docs = {env: pins.get((name, env)) for env in markers.ENVIRONMENTS}
        for doc in docs.values():
            if isinstance(doc, Exception):
                raise doc
        actions = sync(settings, client, name, seen, docs, pending)
        view = read(client, name)
        if view is not None:
            _drop_legacy_tags(client, name, view)
        return actions
    except Exception as exc:  # one technique's trouble must not stop the others
        _logger.error("bridge: %s: %s", name, exc)
        return [Action(name, env, "error", str(exc)) for env in markers.ENVIRONMENTS]


def _drop_legacy_tags(client: Any, name: str, view: View) -> None:
    """Remove the state tags older bridges kept on the registered model (now in :mod:`bridge_state`)."""
    for environment in markers.ENVIRONMENTS:
        if mlflow_tags.BRIDGE + environment in view.tags:
            client.delete_registered_model_tag(name, mlflow_tags.BRIDGE + environment)


def disagreeing(client: Any, name: str, docs: Mapping[str, Any]) -> list[str]:
    """What the registry shows that git does not serve (``[]``: they agree), for ``status`` and the tests."""
    view = read(client, name)
    shown = markers.project(docs)
    if view is None:
        return ["registered model"] if any(shown.pinned.values()) else []
    wrong = [
        f"@{alias}=v{view.aliases.get(alias, '-')} (serves v{shown.aliases.get(alias, '-')})"
        for alias in sorted(markers.managed_aliases())
        if view.aliases.get(alias, "") != shown.aliases.get(alias, "")
    ]
    for item in view.versions:
        want = shown.stages.get(str(item.version))
        stage = str(item.current_stage)
        if (want and stage != want) or (not want and stage in ENV_OF_STAGE):
            wrong.append(f"v{item.version} {stage} (should be {want or markers.ARCHIVED})")
    return wrong
