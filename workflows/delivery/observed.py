"""What Argo CD would say of local serving: the commit served, Synced/OutOfSync, Healthy/Progressing/Degraded.

Sync compares the commit serving last applied with the head of the main branch on the GitOps remote; a commit
serving could not render or apply is OutOfSync with the error as its reason.  Health is per InferenceService,
from its Ready condition: Ready is Healthy; a revision still loading is Progressing; a failed revision, or
serving down, is Degraded.  Promotions the ledger flags (a plain ``git merge`` or a commit that put an older
version back) are listed, so ``get isvc`` and ``status`` tell the user what they did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from serving import shared
from workflows.platform import gitrepo
from workflows.settings import Settings

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sync:
    """The served commit against main's head."""

    status: str  # "Synced" or "OutOfSync" (or "Unknown" when the remote cannot be read)
    served: str
    head: str
    reason: str


def head(settings: Settings) -> str:
    """The commit at the head of the main branch on the remote ('' when it cannot be read)."""
    return shared.remote_head(settings.git_remote, settings.git_branch, gitrepo.auth_env())


def serving_status(settings: Settings) -> dict[str, Any]:
    """What local serving last wrote to its status file ({} before its first pass)."""
    return shared.read_status(settings.state_dir)


def sync(settings: Settings, document: dict[str, Any]) -> Sync:
    """Synced when serving applied main's head without error."""
    served, main = str(document.get("commit", "")), head(settings)
    if not main:
        return Sync("Unknown", served, main, f"the GitOps remote {settings.git_remote} cannot be read")
    if document.get("error"):
        return Sync("OutOfSync", served, main, str(document["error"]))
    if served != main:
        return Sync("OutOfSync", served, main, f"serving {served[:12] or 'nothing'}, main is at {main[:12]}")
    return Sync("Synced", served, main, "")


def health(item: dict[str, Any]) -> tuple[str, str]:
    """Argo CD's health word for one InferenceService, and why when it is not Healthy."""
    conditions: list[dict[str, Any]] = item["status"].get("conditions", [])
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    if ready.get("status") == "True":
        return "Healthy", ""
    why = str(ready.get("message") or ready.get("reason") or "not ready")
    return ("Progressing" if ready.get("reason") == "RevisionLoading" else "Degraded"), why


def flagged(settings: Settings, items: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """The newest ledger entry's flag per served (namespace, name), where it has one."""
    from workflows.delivery import ledger, overlays

    found: dict[tuple[str, str], str] = {}
    environment_of = {namespace: env for env, namespace in overlays.NAMESPACE.items()}
    for item in items:
        namespace, name = item["metadata"].get("namespace", ""), item["metadata"]["name"]
        environment = environment_of.get(namespace)
        if environment is None:
            continue
        try:
            entries = ledger.history(settings.git_remote, settings.git_branch, name, environment)
        except (gitrepo.GitError, overlays.GitopsError) as exc:
            _logger.debug("no ledger for %s/%s: %s", namespace, name, exc)
            continue
        if entries and entries[-1].flag:
            found[(namespace, name)] = f"revision {entries[-1].revision}: {entries[-1].flag}"
    return found


def annotate(settings: Settings, items: list[dict[str, Any]]) -> Sync:
    """Add ``status.delivery`` (commit, sync, health, reason, flag) to each item; return the sync state."""
    state = sync(settings, serving_status(settings))
    flags = flagged(settings, items)
    for item in items:
        word, why = health(item)
        key = (item["metadata"].get("namespace", ""), item["metadata"]["name"])
        item["status"]["delivery"] = {
            "commit": state.served,
            "sync": state.status,
            "health": word,
            "reason": "; ".join(r for r in (state.reason, why) if r),
            "flag": flags.get(key, ""),
        }
    return state


def summary(settings: Settings, items: list[dict[str, Any]]) -> str:
    """One line for ``ctcd status``: the commit served, sync, overall health, and any flagged promotion."""
    state = annotate(settings, items)
    words = [item["status"]["delivery"]["health"] for item in items]
    overall = next((w for w in ("Degraded", "Progressing") if w in words), "Healthy" if words else "Missing")
    parts = [f"{state.status} {state.served[:12] or '-'}", overall]
    if state.reason:
        parts.append(state.reason)
    for item in items:
        delivery = item["status"]["delivery"]
        if delivery["health"] != "Healthy":
            parts.append(f"{item['metadata'].get('namespace')}/{item['metadata']['name']}: {delivery['reason']}")
        if delivery["flag"]:
            parts.append(f"{item['metadata'].get('namespace')}/{item['metadata']['name']} {delivery['flag']}")
    return "; ".join(parts)
