"""Local stand-ins for the cluster's ConfigMaps and Secrets that templates reference by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.engine.state.nodes import NodeError


@dataclass
class LocalObjects:
    """Stand-ins for the cluster's ConfigMaps and Secrets that templates reference by name."""

    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    volumes: Path | None = None  # where named PersistentVolumeClaims keep their files

    def all_of(self, source: Mapping[str, Any]) -> dict[str, str]:
        """Every key of the object an ``envFrom`` entry names, with its prefix.

        Raises:
            NodeError: The object does not exist locally and is not optional.
        """
        ref_kind = "secretRef" if "secretRef" in source else "configMapRef"
        ref = source[ref_kind]
        store = self.secrets if ref_kind == "secretRef" else self.configmaps
        if ref.get("name") not in store:
            if ref.get("optional"):
                return {}
            kind = "Secret" if ref_kind == "secretRef" else "ConfigMap"
            raise NodeError(f"{kind} {ref.get('name')!r} does not exist locally (known: {sorted(store)})")
        return {source.get("prefix", "") + k: v for k, v in store[ref["name"]].items()}

    def lookup(self, ref_kind: str, ref: Mapping[str, Any]) -> str:
        """Resolve a ``secretKeyRef`` or ``configMapKeyRef``.

        Raises:
            NodeError: The object or key does not exist locally.
        """
        store = self.secrets if ref_kind == "secretKeyRef" else self.configmaps
        name, key = ref.get("name", ""), ref.get("key", "")
        if key not in store.get(name, {}):
            kind = "Secret" if ref_kind == "secretKeyRef" else "ConfigMap"
            raise NodeError(f"{kind} {name!r} has no key {key!r} locally (known: {sorted(store)})")
        return store[name][key]
