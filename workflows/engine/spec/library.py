"""Argo objects read from YAML files, and the WorkflowTemplates that ``templateRef`` resolves against."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Load every Argo object from a YAML or JSON file.

    Raises:
        ValueError: The file is not YAML, or holds something other than Kubernetes objects.
    """
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ValueError(f"{path}: every document must be a Kubernetes object with a `kind`")
    return docs


class TemplateLibrary:
    """WorkflowTemplates (and CronWorkflows) found in folders of YAML files, by ``metadata.name``."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        for folder in folders:
            for path in sorted(Path(folder).glob("*.y*ml")):
                for doc in load_documents(path):
                    if str(doc.get("apiVersion", "")).startswith("argoproj.io/"):  # e.g. skip kustomization.yaml
                        self.add(doc)

    def add(self, doc: Mapping[str, Any]) -> None:
        """Register one object under its kind and name."""
        self.objects[(str(doc["kind"]).lower(), str(doc["metadata"]["name"]))] = json.loads(json.dumps(doc))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """Return an object by kind (``workflowtemplate``) and name.

        Raises:
            KeyError: With the names that do exist.
        """
        key = (kind.lower(), name)
        if key not in self.objects:
            known = sorted(n for k, n in self.objects if k == kind.lower())
            raise KeyError(f"{kind}/{name} not found (known: {', '.join(known) or 'none'})")
        return self.objects[key]

    def names(self, kind: str) -> list[str]:
        """Names of every object of a kind."""
        return sorted(n for k, n in self.objects if k == kind.lower())
