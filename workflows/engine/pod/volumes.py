"""Volumes as folders: where each ``volumeMounts`` path of a pod lives on the host.

- ``emptyDir`` (in the workflow's or the template's ``volumes``): a folder of the pod's own, gone with it;
- ``volumeClaimTemplates``: a folder per run, shared by the run's pods;
- ``persistentVolumeClaim.claimName``: a folder per claim name in the state folder, kept across runs;
- ``configMap`` / ``secret``: a folder holding one file per key of the local stand-in.

``subPath`` mounts a sub-folder (or file) of the volume.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.state.nodes import NodeError

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


def _bodies(tmpl: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("container", "script"):
        if key in tmpl:
            yield tmpl[key]
    container_set = tmpl.get("containerSet") or {}
    if container_set:
        yield container_set
        yield from container_set.get("containers") or []
    yield from tmpl.get("sidecars") or []
    yield from tmpl.get("initContainers") or []


def declared(run: RunContext, tmpl: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The volumes a pod of this template can mount, by name (the template's own win)."""
    found = {v["name"]: {**v, "scope": "pod"} for v in run.spec.get("volumes") or []}
    found.update({v["name"]: {**v, "scope": "pod"} for v in tmpl.get("volumes") or []})
    for claim in run.spec.get("volumeClaimTemplates") or []:
        name = (claim.get("metadata") or {}).get("name", "")
        found[name] = {"name": name, "scope": "run"}
    return found


def mounts(run: RunContext, node_dir: Path, tmpl: Mapping[str, Any]) -> dict[str, str]:
    """Container mount path -> host folder, for every ``volumeMounts`` entry of the pod's containers.

    Raises:
        NodeError: A mount names a volume the workflow does not declare.
    """
    volumes = declared(run, tmpl)
    found: dict[str, str] = {}
    for body in _bodies(tmpl):
        for mount in body.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise NodeError(f"volumeMounts: no volume named {mount['name']!r} (declared: {sorted(volumes)})")
            host = _folder(run, node_dir, volumes[mount["name"]])
            if mount.get("subPath"):
                host = host / mount["subPath"]
                host.mkdir(parents=True, exist_ok=True)
            found[mount["mountPath"].rstrip("/") or "/"] = str(host)
    return found


def _folder(run: RunContext, node_dir: Path, volume: Mapping[str, Any]) -> Path:
    objects = run.engine.objects
    if "persistentVolumeClaim" in volume:
        root = objects.volumes or (run.engine.store.root.parent / "volumes")
        folder = root / volume["persistentVolumeClaim"]["claimName"]
    elif volume["scope"] == "run":
        folder = run.dir / "volumes" / volume["name"]
    else:
        folder = node_dir / "volumes" / volume["name"]
    folder.mkdir(parents=True, exist_ok=True)
    for kind, store in (("configMap", objects.configmaps), ("secret", objects.secrets)):
        if kind in volume:
            ref = volume[kind].get("name") or volume[kind].get("secretName", "")
            for key, value in store.get(ref, {}).items():
                (folder / key).write_text(value)
    return Path(folder)
