"""The registry bridge: keeps the MLflow registry and ``gitops/`` in agreement; the latest move wins.

Each environment has markers (README, "The registry and git, both ways"): production is alias ``champion`` and
stage ``Production``; staging is stage ``Staging``; each also has its version file on main (the git marker).
The bridge remembers what it last saw of every marker (:mod:`workflows.delivery.bridge_state`, outside the registry).
Each pass finds the markers that moved since, and the latest of them wins:

- a registry marker moved (an alias set or moved, a stage change in the UI) → a promotion commit (to main where
  the environment merges by itself, else a ``promote/<env>/<technique>/v<N>`` branch for a human to merge), and
  the other registry marker follows;
- git moved (a merged branch, a revert, a rollback, a training canary) → the registry markers follow.

A marker that was emptied (the alias deleted, the pinned version moved out of its stage) is not a promotion:
nothing stops serving from the registry, so the marker is set back on the pinned version.  A version pinned in
staging that moved on to ``Production`` still counts as staged.  Each decision is logged on one line.

MLflow has webhooks for alias changes but none for stage changes, so the bridge reconciles on a timer (a
CronWorkflow on a cluster, a loop next to the platform locally) and also on verified alias webhooks.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.delivery import bridge_state, overlays, promotion
from workflows.platform import registry
from workflows.settings import Settings

_logger = logging.getLogger(__name__)
STAGE = {"staging": "Staging", "production": "Production"}
TIE_ORDER = {"git": 0, "stage": 1, "alias": 2}  # two moves seen at the same instant: the registry's wins


@dataclass(frozen=True)
class Action:
    """What one reconcile did for one technique and environment."""

    technique: str
    environment: str
    kind: str  # "in-sync", "promoted", "proposed", "registry-updated", "waiting", "error"
    detail: str


@dataclass(frozen=True)
class View:
    """One read of a registered model: its aliases and tags, and its versions with their stages."""

    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[Any]


@dataclass(frozen=True)
class Marker:
    """A marker's version ('' when unset) and when it last moved (ms; the pass's time where MLflow keeps none)."""

    version: str
    stamp: int


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


def _stage_of(view: View, version: str) -> str:
    return next((str(v.current_stage) for v in view.versions if str(v.version) == version), "")


def _stage_marker(view: View, environment: str, pinned: str) -> Marker:
    """The version moved into the environment's stage most recently (a staging pin in Production counts)."""
    staged = [v for v in view.versions if v.current_stage == STAGE[environment]]
    if staged:
        newest = max(staged, key=lambda v: (int(v.last_updated_timestamp or 0), int(v.version)))
        return Marker(str(newest.version), int(newest.last_updated_timestamp or 0))
    if environment == "staging" and pinned and _stage_of(view, pinned) == STAGE["production"]:
        return Marker(pinned, 0)
    return Marker("", 0)


def markers(view: View, environment: str, pinned: str, now_ms: int) -> dict[str, Marker]:
    """Every marker of one environment as seen now."""
    found = {"git": Marker(pinned, now_ms), "stage": _stage_marker(view, environment, pinned)}
    if environment == "production":
        found["alias"] = Marker(view.aliases.get(registry.CHAMPION, ""), now_ms)
    return found


def registry_choice(client: Any, name: str, environment: str, view: View | None = None) -> str:
    """The version the registry wants in an environment ('' when it wants none).

    Production: the version with alias ``champion``, else the latest moved into stage ``Production``; staging:
    the latest moved into stage ``Staging``.  ``view`` is used when given, else the registry is read now.
    """
    view = view or read(client, name)
    if view is None:
        return ""
    if environment == "production" and registry.CHAMPION in view.aliases:
        return view.aliases[registry.CHAMPION]
    return _stage_marker(view, environment, "").version


def disagreeing(client: Any, name: str, environment: str, pinned: str) -> list[str]:
    """The registry markers of an environment that do not hold the version git pins (``[]``: they agree)."""
    view = read(client, name)
    if view is None:
        return ["registered model"] if pinned else []
    found = markers(view, environment, pinned, 0)
    return [f"{n}=v{m.version or '-'}" for n, m in found.items() if n != "git" and m.version != pinned]


def agrees(client: Any, remote: str, name: str, environment: str, pinned: str) -> bool:
    """Whether the registry agrees with git's pin, or wants a version whose promotion branch awaits a merge."""
    if not disagreeing(client, name, environment, pinned):
        return True
    wanted = registry_choice(client, name, environment)
    if not wanted:
        return False
    ref = f"refs/heads/{promotion.branch_name(environment, name, wanted)}"
    listed = subprocess.run(["git", "ls-remote", "--heads", "--", remote, ref], capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


def _moved(name: str, now: Marker, before: list[Any] | None) -> bool:
    """Whether a marker moved to a version since the last pass.

    Emptied is not a move; nor is a stage whose newest entry left it, revealing an older one (its stamp is older).
    """
    if before is None or not now.version or now.version == str(before[0]):
        return False
    return name != "stage" or now.stamp > int(before[1])


def decide(now: Mapping[str, Marker], last: Mapping[str, list[Any]]) -> str:
    """The marker whose move wins this pass ('' when none moved): the latest, by stamp."""
    moves = [name for name, marker in now.items() if _moved(name, marker, last.get(name))]
    return max(moves, key=lambda n: (now[n].stamp, TIE_ORDER[n])) if moves else ""


def _legacy(view: View, environment: str) -> dict[str, list[Any]]:
    """What an older bridge recorded in the registry tag ``ctcd.bridge.<env>`` ({} when there is none)."""
    raw = view.tags.get(f"ctcd.bridge.{environment}")
    if not raw:
        return {}
    try:
        agreed = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(agreed, dict):
        return {}
    wanted = str(agreed.get("registry", ""))
    return {"git": [str(agreed.get("git", "")), 0], "stage": [wanted, 0], "alias": [wanted, 0]}


def _align(client: Any, name: str, environment: str, version: str, now: Mapping[str, Marker]) -> list[str]:
    """Set the environment's registry markers on ``version``; return what was set, for the log line."""
    done = []
    if environment == "production" and now["alias"].version != version:
        client.set_registered_model_alias(name, registry.CHAMPION, version)
        done.append(f"alias {registry.CHAMPION} set to v{version}")
    if now["stage"].version != version:
        client.transition_model_version_stage(name, version, STAGE[environment], archive_existing_versions=True)
        done.append(f"stage {STAGE[environment]} set to v{version}")
    return done


def _clear(client: Any, name: str, environment: str) -> list[str]:
    """An environment git no longer pins: take its markers off every version; return what was cleared."""
    view, done = read(client, name), list[str]()
    if view is None:
        return done
    if environment == "production" and registry.CHAMPION in view.aliases:
        client.delete_registered_model_alias(name, registry.CHAMPION)
        done.append(f"alias {registry.CHAMPION} deleted")
    for version in view.versions:
        if version.current_stage == STAGE[environment]:
            client.transition_model_version_stage(name, str(version.version), "Archived")
            done.append(f"v{version.version} {STAGE[environment]} -> Archived")
    return done


def _describe(name: str, marker: Marker, before: list[Any] | None) -> str:
    label = {"alias": f"alias {registry.CHAMPION}", "stage": "stage", "git": "git pin"}[name]
    was = f"v{before[0]}" if before and before[0] else "-"
    return f"{label} moved {was} -> v{marker.version}"


def _pin_of(settings: Settings, name: str, environment: str, pins: Mapping[tuple[str, str], Any] | None) -> str:
    if pins is None:
        doc = promotion.current(settings.git_remote, settings.git_branch, name, environment)
    else:
        doc = pins.get((name, environment))
        if isinstance(doc, Exception):
            raise doc
    return str(doc["a"]["version"]) if doc else ""


def sync(
    settings: Settings,
    client: Any,
    name: str,
    environment: str,
    seen: bridge_state.Seen,
    pins: Mapping[tuple[str, str], Any] | None = None,
    view: View | None = None,
) -> Action:
    """Bring one technique's environment into agreement (at most one promotion and the registry markers).

    Args:
        settings: Where the registry and the GitOps remote are.
        client: An MLflow client.
        name: The technique (registered model).
        environment: ``staging`` or ``production``.
        seen: The bridge state; this environment's entry is read and replaced.
        pins: The version files on main, as :func:`promotion.pinned` reads them once per pass (default: read
            this one file now).
        view: The registered model as :func:`read` saw it this pass (default: read it now).
    """
    view = view or read(client, name)
    if view is None:
        return Action(name, environment, "in-sync", "not registered")
    key = f"{name}/{environment}"
    pinned = _pin_of(settings, name, environment, pins)
    now = markers(view, environment, pinned, int(time.time() * 1000))
    last = seen.get(key) or _legacy(view, environment)
    winner = decide(now, last)
    action, record = _act(settings, client, name, environment, now, last, winner)
    seen[key] = record
    return action


def _act(
    settings: Settings,
    client: Any,
    name: str,
    environment: str,
    now: dict[str, Marker],
    last: Mapping[str, list[Any]],
    winner: str,
) -> tuple[Action, dict[str, list[Any]]]:
    """Carry out the pass's decision; return the action and what to remember of every marker."""
    pinned = now["git"].version
    wanted = now[winner].version if winner and winner != "git" else _registry_wants(now)
    proposed = str(last.get("proposed", ["", 0])[0])
    record: dict[str, list[Any]] = {n: [m.version, m.stamp] for n, m in now.items()}
    moved = _describe(winner, now[winner], last.get(winner)) if winner else ""
    if winner and winner != "git" and wanted != pinned:
        action, record = _promote(settings, client, name, environment, wanted, now, record)
        _logger.info("bridge %s/%s: %s (latest move); %s", environment, name, moved, action.detail)
        return action, record
    if not pinned and last.get("git", [""])[0] and not (winner and winner != "git"):
        done = _clear(client, name, environment)
        record.update(_reread(client, name, environment, ""))
        was = last["git"][0]
        _logger.info("bridge %s/%s: git pin removed (was v%s); registry follows: %s", environment, name, was,
                     ", ".join(done) or "nothing to clear")  # fmt: skip
        return Action(name, environment, "registry-updated", "removed in git: registry markers cleared"), record
    if not winner and proposed and proposed == wanted and wanted != pinned:
        record["proposed"] = [proposed, 0]
        branch = promotion.branch_name(environment, name, proposed)
        return Action(name, environment, "waiting", f"v{proposed} waits on {branch} for a merge"), record
    target = pinned or wanted
    if not target or all(m.version == target for m in now.values()):
        return Action(name, environment, "in-sync", f"v{target or '-'}"), record
    if not pinned:  # the first promotion of this environment comes from the registry
        action, record = _promote(settings, client, name, environment, wanted, now, record)
        _logger.info("bridge %s/%s: registry wants v%s, git pins none; %s", environment, name, wanted, action.detail)
        return action, record
    done = _align(client, name, environment, pinned, now)
    record.update(_reread(client, name, environment, pinned))
    why = moved or "registry disagreed with git"
    _logger.info("bridge %s/%s: %s; registry follows git v%s: %s", environment, name, why, pinned, ", ".join(done))
    return Action(name, environment, "registry-updated", f"registry follows git: v{pinned}"), record


def _registry_wants(now: Mapping[str, Marker]) -> str:
    alias = now.get("alias")
    return alias.version if alias is not None and alias.version else now["stage"].version


def _reread(client: Any, name: str, environment: str, pinned: str) -> dict[str, list[Any]]:
    """The registry markers after the bridge set them (so its own changes are not seen as moves)."""
    after = read(client, name)
    if after is None:
        return {}
    fresh = markers(after, environment, pinned, int(time.time() * 1000))
    return {n: [m.version, m.stamp] for n, m in fresh.items() if n != "git"}


def _promote(
    settings: Settings,
    client: Any,
    name: str,
    environment: str,
    wanted: str,
    now: dict[str, Marker],
    record: dict[str, list[Any]],
) -> tuple[Action, dict[str, list[Any]]]:
    pinned = now["git"].version
    pin = overlays.Pin(**registry.pin_fields(client, name, wanted, settings.artifacts_bucket))
    desired = (
        overlays.Desired(name, environment, "canary", pin, canary_percent=20)
        if pinned
        else overlays.Desired(name, environment, "full", pin)
    )
    direct = settings.merges_by_itself(environment)
    evidence = {"Promoted-By": "registry-bridge", "Registry-Change": f"{environment}=v{wanted}", "Source": "registry"}
    result = promotion.promote(settings.git_remote, settings.git_branch, desired, evidence, to_main=direct)
    done = _align(client, name, environment, wanted, now)
    record = {**record, **_reread(client, name, environment, wanted if direct else pinned)}
    if direct:
        record["git"] = [wanted, int(time.time() * 1000)]
    else:
        record["proposed"] = [wanted, 0]
    kind = "promoted" if direct else "proposed"
    detail = f"v{wanted} {desired.strategy} on {result.branch} ({result.commit[:12]})"
    return Action(name, environment, kind, detail + (f"; {', '.join(done)}" if done else "")), record


def reconcile_once(settings: Settings) -> list[Action]:
    """One pass over every technique of this repository that has a registered version, in both environments."""
    from models.contract import discover

    return reconcile(settings, sorted(discover()))


def reconcile(settings: Settings, techniques: Iterable[str]) -> list[Action]:
    """One pass over ``techniques`` (those with a registered version) and both environments; git is read once."""
    client = registry.client(settings.mlflow_tracking_uri)
    store = bridge_state.store(settings)
    with store.locked():
        seen = store.load()
        pins = promotion.pinned(settings.git_remote, settings.git_branch)
        actions = [a for name in techniques for a in _technique(settings, client, name, seen, pins)]
        store.save(seen)
    return actions


def _technique(
    settings: Settings, client: Any, name: str, seen: bridge_state.Seen, pins: Mapping[tuple[str, str], Any]
) -> list[Action]:
    view = read(client, name)
    if view is None:
        return []
    actions = []
    for environment in overlays.ENVIRONMENTS:
        try:
            actions.append(sync(settings, client, name, environment, seen, pins, view))
            view = read(client, name) or view  # the first environment may have moved stages
        except Exception as exc:  # one technique's trouble must not stop the others
            _logger.error("bridge: %s/%s: %s", name, environment, exc)
            actions.append(Action(name, environment, "error", str(exc)))
    _drop_legacy_tags(client, name, view)
    return actions


def _drop_legacy_tags(client: Any, name: str, view: View) -> None:
    """Remove the state tags older bridges kept on the registered model (now in :mod:`bridge_state`)."""
    for environment in overlays.ENVIRONMENTS:
        if f"ctcd.bridge.{environment}" in view.tags:
            client.delete_registered_model_tag(name, f"ctcd.bridge.{environment}")
