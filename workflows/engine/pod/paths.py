"""Paths a template declares, mapped into the node's own folder so that parallel steps never collide."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERA_OUTPUTS_ENV = "hera__outputs_directory"

SYSTEM_FOLDERS = {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin", "sys", "usr", "var"}


def _folders_above(path: str) -> set[str]:
    """The folders holding a declared path (``/mnt/out`` for ``/mnt/out/part.json``).

    A step may make or list them itself.  Top folders (``/tmp``) are not mapped whole, so a host path given as a
    parameter (``/tmp/job/input``) stays as it is; system folders of the image (``/usr``…) are never mapped.
    """
    parts = path.strip("/").split("/")[:-1]
    if not parts or parts[0] in SYSTEM_FOLDERS:
        return set()
    return {"/" + "/".join(parts[: i + 1]) for i in range(1, len(parts))}  # never a top folder such as /tmp


def path_mapping(tmpl: Mapping[str, Any], fs_root: Path, mounts: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map every container path a template declares to a host path.

    A path goes into its volume when it lies under a mount, else under the node's own folder.  Mount paths
    themselves map to their volume folders.
    """
    inputs = {a["path"] for a in (tmpl.get("inputs") or {}).get("artifacts", []) if a.get("path")}
    outputs = tmpl.get("outputs") or {}
    body = tmpl.get("script") or tmpl.get("container") or {}
    inputs |= {e.get("value", "") for e in body.get("env", []) if e.get("name") == HERA_OUTPUTS_ENV} - {""}
    paths = set(inputs) | {a["path"] for a in outputs.get("artifacts", []) if a.get("path")}
    paths |= {(p.get("valueFrom") or {}).get("path", "") for p in outputs.get("parameters", [])} - {""}
    mounts = dict(mounts or {})
    mapping = dict(mounts)
    folders: set[str] = set()
    for path in list(paths):
        if path.endswith("/") and len(path) > 1:  # a folder: files under it map too
            paths.add(path.rstrip("/"))
        folders |= _folders_above(path.rstrip("/"))
    paths |= folders
    for path in paths:
        if not path.startswith("/"):
            continue
        mount = next((m for m in sorted(mounts, key=len, reverse=True) if path == m or path.startswith(m + "/")), None)
        mapping[path] = mounts[mount] + path[len(mount) :] if mount else str(fs_root) + path
    for container_path, host in mapping.items():
        if container_path in mounts or container_path.endswith("/"):
            Path(host).mkdir(parents=True, exist_ok=True)
        elif container_path in inputs or any(container_path.startswith(i + "/") for i in inputs):
            # Argo puts input artifacts in place, folders and all; hera's outputs folder is made for its runner
            Path(host).parent.mkdir(parents=True, exist_ok=True)
        elif container_path.startswith("/") and container_path.count("/") > 1:  # an image has /tmp, /mnt…
            (fs_root / container_path.strip("/").split("/")[0]).mkdir(parents=True, exist_ok=True)
    return mapping


def remap(text: str, mapping: Mapping[str, str]) -> str:
    """Replace whole container paths with their host paths in one pass (a host path is never re-mapped).

    A path followed by a glob (``cat /tmp/message*``) is mapped too: the shell then expands it in the pod's folder.
    """
    if not mapping or not text:
        return text
    alternation = "|".join(re.escape(p) for p in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({alternation})(?=$|[/\s\"'>;:|)&,*?\[])"
    return re.sub(pattern, lambda m: mapping[m.group(1)], text)
