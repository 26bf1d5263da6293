"""Argo ``memoize`` for the local engine: a node's outputs kept under its key, in the ConfigMap's folder.

``maxAge`` bounds how old a hit may be.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from workflows.engine.language.durations import parse_duration
from workflows.engine.state import names
from workflows.engine.state.nodes import Node, Outputs


class Cache:
    """Memoized node outputs, by cache (ConfigMap name) and key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, cache: str, key: str) -> Path:
        name = _safe(key)
        if len(name) > 200 or name != key:  # keep distinct keys distinct after shortening or escaping
            name = f"{name[:180]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        return self.folder / names.check("memoize cache ConfigMap", cache) / f"{name}.json"

    def get(self, cache: str, key: str, max_age: str | None) -> Outputs | None:
        """Cached outputs, or None when missing or older than ``max_age``."""
        path = self._path(cache, key)
        if not path.exists():
            return None
        entry = json.loads(path.read_text())
        if max_age and time.time() - entry["created"] > parse_duration(max_age):
            return None
        return cast(Outputs, entry["outputs"])  # written by put() below

    def put(self, cache: str, key: str, outputs: Outputs, node_id: str) -> None:
        """Store a node's outputs (atomically)."""
        path = self._path(cache, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "nodeID": node_id, "created": time.time(), "outputs": outputs}))
        tmp.replace(path)


def memo_lookup(cache: Cache, node: Node, memo: Mapping[str, Any]) -> Outputs | None:
    """Outputs memoized under a template's key, or None; the lookup is recorded on the node, as Argo does."""
    name = memo["cache"]["configMap"]["name"]
    cached = cache.get(name, memo["key"], memo.get("maxAge"))
    node["memoizationStatus"] = {"hit": cached is not None, "key": memo["key"], "cacheName": name}
    return cached


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
