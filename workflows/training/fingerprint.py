"""Content fingerprints that key the memoized steps of training: the data, the code, the champion.

A step is reused only when the same technique sees the same bytes through the same code: the data key hashes
the S3 ETags of the technique's files (or names a recorded dataset version), and the code version hashes the
source of the ``workflows`` package and the technique's own package.  Nothing here depends on time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

PREFIXES = ("train/", "test/", "retired/")


def _digest(parts: list[str]) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def data_key(client: Any, bucket: str, technique: str, data_version: str = "") -> str:
    """The key of the data a run would load: the recorded version asked for, else the files' ETags.

    Args:
        client: A boto3 S3 client.
        bucket: The datasets bucket.
        technique: The technique's name (its folder in the bucket).
        data_version: A recorded dataset version, when the run pins one.

    Returns:
        ``v-<version>`` for a pinned version, else ``d-<16 hex>`` over every train and test file's key and ETag.
    """
    if data_version:
        return f"v-{data_version}"
    parts: list[str] = []
    for prefix in PREFIXES:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{technique}/{prefix}")
        for page in pages:
            parts.extend(f"{o['Key']}={o['ETag'].strip(chr(34))}" for o in page.get("Contents", []))
    return f"d-{_digest(sorted(parts))}"


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{module!r} is not an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


def code_version(technique_package: str) -> str:
    """The hash of the code a training step runs: ``workflows``, the model contract and the technique's package.

    Args:
        technique_package: The import name of the technique's package, e.g. ``models.intent_classifier``.

    Returns:
        ``c-<16 hex>``; any edit to one of those source files gives a new value.
    """
    workflows_dir, technique_dir = _package_dir("workflows"), _package_dir(technique_package)
    root = workflows_dir.parent
    files = [*_sources(workflows_dir), technique_dir.parent / "contract.py", *_sources(technique_dir)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"c-{digest.hexdigest()[:16]}"
