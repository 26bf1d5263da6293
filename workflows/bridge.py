"""The registry bridge: keeps the MLflow registry and ``gitops/`` in agreement, whichever side moved first.

Per technique and environment, the registry's choice is: production — the version with alias ``champion``,
else the newest in stage ``Production``; staging — the newest in stage ``Staging``.  The git side is the
version pinned in that environment's version file on the main branch.  The last state both sides agreed on
is kept as a tag on the registered model (``ctcd.bridge.<env>``), so the bridge holds no state of its own:

- the registry moved (an alias or stage change in the UI) → a promotion commit (to main where the
  environment merges by itself, else a ``promote/<env>/<technique>/v<N>`` branch for a human to merge);
- git moved (a merged branch, a revert, a training canary) → the registry follows (alias or stage set).

MLflow has webhooks for alias changes but none for stage changes, so the bridge reconciles on a timer (a
CronWorkflow on a cluster, a loop next to the platform locally) and also on verified alias webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows import gitops, promotion
from workflows.platform import registry
from workflows.settings import Settings

_logger = logging.getLogger(__name__)
STAGE = {"staging": "Staging", "production": "Production"}
MAX_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Action:
    """What one reconcile did for one technique and environment."""

    technique: str
    environment: str
    kind: str  # "in-sync", "promoted", "proposed", "registry-updated", "waiting"
    detail: str


@dataclass(frozen=True)
class View:
    """One read of a registered model: its aliases and tags, and its versions with their stages."""

    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[Any]


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


def registry_choice(client: Any, name: str, environment: str, view: View | None = None) -> str:
    """The version the registry wants in an environment ('' when it wants none).

    Production: the version with alias ``champion``, else the newest in stage ``Production``; staging: the newest
    in stage ``Staging``.  ``view`` is used when given, else the registry is read now.
    """
    view = view or read(client, name)
    if view is None:
        return ""
    if environment == "production" and registry.CHAMPION in view.aliases:
        return view.aliases[registry.CHAMPION]
    staged = registry.newest_in_stage(view.versions, STAGE[environment])
    return str(staged.version) if staged is not None else ""


def _agreed(view: View | None, environment: str) -> dict[str, str]:
    raw = view.tags.get(f"ctcd.bridge.{environment}") if view else None
    return dict(json.loads(raw)) if raw else {"registry": "", "git": ""}


def _record(client: Any, name: str, environment: str, registry_version: str, git_version: str) -> None:
    value = json.dumps({"registry": registry_version, "git": git_version})
    client.set_registered_model_tag(name, f"ctcd.bridge.{environment}", value)


def _follow_git(client: Any, name: str, environment: str, version: str) -> None:
    if environment == "production":
        client.set_registered_model_alias(name, registry.CHAMPION, version)
    else:
        client.transition_model_version_stage(name, version, STAGE[environment], archive_existing_versions=True)


def sync(
    settings: Settings,
    client: Any,
    name: str,
    environment: str,
    pins: Mapping[tuple[str, str], Any] | None = None,
    view: View | None = None,
) -> Action:
    """Bring one technique's environment into agreement (at most one promotion or one registry change).

    Args:
        settings: Where the registry and the GitOps remote are.
        client: An MLflow client.
        name: The technique (registered model).
        environment: ``staging`` or ``production``.
        pins: The version files on main, as :func:`promotion.pinned` reads them once per pass (default: read
            this one file now).
        view: The registered model as :func:`read` saw it this pass (default: read it now).
    """
    view = view or read(client, name)
    wanted = registry_choice(client, name, environment, view)
    if pins is None:
        pinned_doc = promotion.current(settings.git_remote, settings.git_branch, name, environment)
    else:
        pinned_doc = pins.get((name, environment))
        if isinstance(pinned_doc, Exception):
            raise pinned_doc
    pinned = pinned_doc["a"]["version"] if pinned_doc else ""
    last = _agreed(view, environment)
    if wanted == pinned:
        if last != {"registry": wanted, "git": pinned}:
            _record(client, name, environment, wanted, pinned)
        return Action(name, environment, "in-sync", f"v{wanted or '-'}")
    if wanted and wanted != last["registry"]:
        return _promote(settings, client, name, environment, wanted, pinned)
    if pinned and pinned != last["git"]:
        _follow_git(client, name, environment, pinned)
        _record(client, name, environment, registry_choice(client, name, environment), pinned)
        return Action(name, environment, "registry-updated", f"registry follows git: v{pinned}")
    branch = promotion.branch_name(environment, name, wanted) if wanted else "a promotion branch"
    return Action(name, environment, "waiting", f"v{wanted} waits on {branch} for a merge")


def _promote(settings: Settings, client: Any, name: str, environment: str, wanted: str, pinned: str) -> Action:
    pin = gitops.Pin(**registry.pin_fields(client, name, wanted, settings.artifacts_bucket))
    desired = (
        gitops.Desired(name, environment, "canary", pin, canary_percent=20)
        if pinned
        else gitops.Desired(name, environment, "full", pin)
    )
    direct = settings.merges_by_itself(environment)
    evidence = {"Promoted-By": "registry-bridge", "Registry-Change": f"{environment}=v{wanted}", "Source": "registry"}
    result = promotion.promote(settings.git_remote, settings.git_branch, desired, evidence, to_main=direct)
    _record(client, name, environment, wanted, wanted if direct else pinned)
    kind = "promoted" if direct else "proposed"
    return Action(name, environment, kind, f"v{wanted} on {result.branch} ({result.commit[:12]})")


def reconcile_once(settings: Settings) -> list[Action]:
    """One pass over every technique of this repository that has a registered version, in both environments."""
    from models.contract import discover

    return reconcile(settings, sorted(discover()))


def reconcile(settings: Settings, techniques: Iterable[str]) -> list[Action]:
    """One pass over ``techniques`` (those with a registered version) and both environments; git is read once."""
    client = registry.client(settings.mlflow_tracking_uri)
    pins = promotion.pinned(settings.git_remote, settings.git_branch)
    actions = []
    for name in techniques:
        view = read(client, name)
        if view is None:
            continue
        for environment in gitops.ENVIRONMENTS:
            try:
                actions.append(sync(settings, client, name, environment, pins, view))
            except Exception as exc:  # one technique's trouble must not stop the others
                _logger.error("bridge: %s/%s: %s", name, environment, exc)
                actions.append(Action(name, environment, "error", str(exc)))
    return actions


def sign(secret: str, delivery_id: str, timestamp: str, payload: str | bytes) -> str:
    """MLflow's webhook signature: ``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{payload}"))."""
    body = payload if isinstance(payload, bytes) else payload.encode()
    message = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], payload: str | bytes, now: float | None = None) -> str:
    """Check an MLflow webhook delivery; return '' when valid, else why not (compared in constant time).

    Only the headers are read before the signature is checked; the body is hashed as raw bytes, never parsed.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-mlflow-signature", "")
    delivery, stamp = lowered.get("x-mlflow-delivery-id", ""), lowered.get("x-mlflow-timestamp", "")
    if not (signature and delivery and stamp):
        return "missing X-MLflow-Signature, X-MLflow-Delivery-Id or X-MLflow-Timestamp"
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return "X-MLflow-Timestamp is not a Unix time in seconds"
    skew = abs((now or time.time()) - int(stamp))
    if skew > MAX_SKEW_SECONDS:
        return f"timestamp is {skew:.0f}s away from now (replay?)"
    if len(delivery) > 200:
        return "X-MLflow-Delivery-Id is longer than 200 characters"
    if not hmac.compare_digest(sign(secret, delivery, stamp, payload).encode(), signature.encode("utf-8", "replace")):
        return "signature does not match"
    return ""
