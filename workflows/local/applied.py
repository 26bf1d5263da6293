"""Objects a user adds to the local platform, as ``kubectl apply`` / ``argo template create`` would on a cluster.

WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows, ConfigMaps and PersistentVolumeClaims are kept one
file each under ``<state>/applied/<kind>/<name>.yaml``, next to the repo's own library.  The engine resolves
``templateRef`` (and ``clusterScope``) against them, and ``configMapKeyRef`` against the ConfigMaps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from workflows.engine import names as object_names
from workflows.errors import CtcdError
from workflows.settings import Settings

KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "ConfigMap", "PersistentVolumeClaim")
TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


class ApplyError(CtcdError, ValueError):
    """An object cannot be applied, or does not exist; the message names it."""


def folder(settings: Settings, kind: str) -> Path:
    """Where applied objects of one kind are kept."""
    return settings.state_dir / "applied" / kind.lower()


def _name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    name = meta.get("name") or str(meta.get("generateName", "")).rstrip("-")
    if not name:
        raise ApplyError(f"{doc.get('kind')}: metadata.name is missing", hint="give the object a metadata.name")
    return object_names.check(f"{doc.get('kind')} metadata.name:", str(name))


def apply(settings: Settings, docs: Iterable[Mapping[str, Any]], kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Keep each object (all are checked first, so nothing is half-applied); return ``kind/name created|configured``.

    Raises:
        ApplyError: An object's kind is not one of ``kinds``, or it has no name.
    """
    checked = []
    for doc in docs:
        if doc.get("kind") not in kinds:
            raise ApplyError(
                f"{doc.get('kind')} {doc.get('metadata', {}).get('name', '')!r} cannot be added here",
                hint=f"only {', '.join(kinds)} objects are accepted",
            )
        checked.append((doc, _name(doc)))
    done = []
    for doc, name in checked:
        path = folder(settings, str(doc["kind"])) / f"{name}.yaml"
        verb = "configured" if path.exists() else "created"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(yaml.safe_dump(dict(doc), sort_keys=False))
        tmp.replace(path)
        done.append(f"{str(doc['kind']).lower()}/{name} {verb}")
    return done


def names(settings: Settings, kind: str) -> list[str]:
    """Names of the applied objects of one kind."""
    return sorted(p.stem for p in folder(settings, kind).glob("*.yaml"))


def get(settings: Settings, kind: str, name: str) -> dict[str, Any]:
    """One applied object.

    Raises:
        ApplyError: No such object (the message lists the ones there are).
    """
    path = folder(settings, kind) / f"{object_names.check(kind, name)}.yaml"
    if not path.is_file():
        known = ", ".join(names(settings, kind)) or "none"
        raise ApplyError(f"{kind} {name!r} not found (known: {known})", hint="add it with `ctcd template create FILE`")
    loaded = yaml.safe_load(path.read_text())
    return dict(loaded)


def delete(settings: Settings, kind: str, name: str) -> None:
    """Remove one applied object.

    Raises:
        ApplyError: No such object.
    """
    get(settings, kind, name)
    (folder(settings, kind) / f"{name}.yaml").unlink()


def all_of(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """Every applied object of one kind."""
    return [get(settings, kind, name) for name in names(settings, kind)]


def configmaps(settings: Settings) -> dict[str, dict[str, str]]:
    """The applied ConfigMaps' data, by name."""
    return {
        str(doc["metadata"]["name"]): {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
        for doc in all_of(settings, "ConfigMap")
    }
